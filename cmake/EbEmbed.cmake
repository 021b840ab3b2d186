# EbEmbed.cmake -- compile a text file into the binary, as a C function
# returning it (NUL-terminated) and its length:
#   cmake -DIN=<file> -DOUT=<file.c> -DFUNC=<name> -DHEADER=<header.h> -P EbEmbed.cmake
# Used for config/redis/eb_timers.lua: the daemon loads that library on
# every connect, so it must not depend on a file next to the binary.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" nhex)
math(EXPR len "${nhex} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n    " body "${body}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}.tmp"
"/* Generated from ${name} by cmake/EbEmbed.cmake at build time; do not edit. */
#include <stddef.h>

#include \"${HEADER}\"

static const unsigned char text[] = {
    ${body}0x00};

const char *${FUNC}(size_t *len) {
    if (len)
        *len = ${len};
    return (const char *)text;
}
")
# Only touch OUT when it changed, so an unchanged library rebuilds nothing.
execute_process(COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
