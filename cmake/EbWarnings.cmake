# eb_target_warnings(target): the one place warning flags are chosen.
# -Werror only when EB_WERROR is on (CI), so a newer compiler on a user's
# machine cannot break their build over a new warning.
function(eb_target_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wformat=2 -Wno-unused-parameter -Wvla)
  if(EB_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
