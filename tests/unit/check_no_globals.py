#!/usr/bin/env python3
"""check_no_globals -- an object file holds no mutable static storage.

STYLE.md: no global mutable state except signal flags. The plugin host
(src/plugin/) reaches everything through the handles it is given: a
process-wide logger or a thread-local "current check" would tie all
loaders of a process, and every thread a plugin starts, to one of them.

    check_no_globals.py ARCHIVE MEMBER...

Reads the symbol table (objdump -t) of each MEMBER of the static library
ARCHIVE and fails on every data object in a writable section (.data,
.bss, and the thread-local .tdata/.tbss). Read-only tables (.rodata, and
.data.rel.ro, which the loader write-protects after relocation) pass, as
does what a sanitizer adds (__asan_*, __ubsan_*, .L labels).
"""
import subprocess
import sys

WRITABLE = (".data", ".bss", ".tdata", ".tbss")
TOOL_PREFIXES = ("__asan", "__odr_asan", "__ubsan", "__sancov", "__gcov", ".L")


def writable(section):
    if section.startswith(".data.rel.ro"):
        return False
    return any(section == w or section.startswith(w + ".") for w in WRITABLE)


def offenders(archive, members):
    out = subprocess.run(["objdump", "-t", archive], capture_output=True, text=True,
                         check=True).stdout
    member, seen = None, set()
    for line in out.splitlines():
        if "file format" in line:
            member = line.split(":", 1)[0].strip()
            seen.add(member)
            continue
        if member not in members:
            continue
        parts = line.split()
        # value flags... section size name: the section is the field before the size
        if len(parts) < 4 or not all(c in "0123456789abcdef" for c in parts[0]):
            continue
        name, section = parts[-1], parts[-3]
        if name == section:
            continue  # the section's own symbol
        if writable(section) and not name.startswith(TOOL_PREFIXES):
            yield "%s: %s in %s" % (member, name, section)
    for m in members:
        if m not in seen:
            yield "%s: not a member of %s" % (m, archive)


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    bad = list(offenders(sys.argv[1], set(sys.argv[2:])))
    for line in bad:
        print(line)
    if bad:
        print("%d writable static object(s): pass state through the handles instead "
              "(STYLE.md: no global mutable state except signal flags)" % len(bad))
        return 1
    print("no writable static objects in %s" % ", ".join(sys.argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
