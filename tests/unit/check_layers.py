#!/usr/bin/env python3
"""check_layers -- src/ is layered by folder; this fails when a file reaches up.

The layers, lowest first (src/CMakeLists.txt says what each holds):

    core < config < {redis, kafka, plugin} < ledger < bridge < daemon

A file may include headers of its own folder and of the folders below it,
never of a folder above, and redis, kafka and plugin never include each other. The
I/O libraries belong to their layers: only redis/ includes hiredis, only
kafka/ (and daemon/, which reports versions) librdkafka, and core/ and
config/ include neither, nor libevent.

Usage: check_layers.py [SRC_DIR]; exit 1 with one line per violation.
"""
import os
import re
import sys

BELOW = {
    "core": set(),
    "config": {"core"},
    "redis": {"core", "config"},
    "kafka": {"core", "config"},
    "plugin": {"core", "config"},
    "ledger": {"core", "config", "redis"},
    "bridge": {"core", "config", "redis", "kafka", "plugin", "ledger"},
    "daemon": {"core", "config", "redis", "kafka", "plugin", "ledger", "bridge"},
}
# System headers that mark an I/O library, and the layers allowed to use it.
LIBRARIES = {
    "hiredis/": {"redis"},
    "librdkafka/": {"kafka", "daemon"},
    "event2/": {"redis", "kafka", "ledger", "bridge", "daemon"},
    # The plugin ABI and dlopen belong to the plugin host alone.
    "expiry_bridge/": {"plugin"},
    "ebp/": {"plugin"},
    "dlfcn.h": {"plugin"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def violations(src):
    for layer in sorted(os.listdir(src)):
        folder = os.path.join(src, layer)
        if not os.path.isdir(folder):
            continue
        if layer not in BELOW:
            yield "%s/: a folder that is not a layer; add it to tests/unit/check_layers.py"
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(layer, name)
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                text = f.read()
            for kind, target in INCLUDE.findall(text):
                if kind == '"':
                    top = target.split("/", 1)[0] if "/" in target else None
                    if top is None:
                        yield "%s: includes \"%s\" without its folder" % (path, target)
                    elif top != layer and top not in BELOW[layer]:
                        yield "%s: includes \"%s\": %s/ is not below %s/" % (
                            path, target, top, layer)
                else:
                    for lib, allowed in LIBRARIES.items():
                        if target.startswith(lib) and layer not in allowed:
                            yield "%s: includes <%s>: only %s/ may" % (
                                path, target, ", ".join(sorted(allowed)))


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
    bad = list(violations(src))
    for line in bad:
        print(line)
    if bad:
        print("%d layering violation(s); see the layer list in src/CMakeLists.txt" % len(bad))
        return 1
    print("layers ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
