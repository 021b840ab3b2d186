#!/usr/bin/env bash
# scripts/debian13.sh -- build and test expiry-bridge on Debian 13 (trixie):
# hiredis 1.2 (with hiredis_ssl), librdkafka 2.8, redis-server 8.0,
# valkey-server 8.1, Python 3.13 -- without Docker, in a chroot.
#
#   scripts/debian13.sh                  make or refresh the root, build, run the ctest suite
#   scripts/debian13.sh --asan           the same with an ASan+UBSan build (build-debian13-asan)
#   scripts/debian13.sh -- -L unit -j2   extra ctest arguments after --
#   scripts/debian13.sh --setup          only make or refresh the root
#   scripts/debian13.sh --shell          a shell in the root, the checkout mounted
#   scripts/debian13.sh --exec -- CMD... run CMD there, in the checkout
#
# The root is made once with debootstrap and kept outside the repository,
# so later runs (CI's too) only refresh it:
#   EB_DEBIAN13_ROOT     where it lives (default /var/cache/expiry-bridge/trixie)
#   EB_DEBIAN13_MIRROR   the Debian archive to use (default: the one this
#                        machine's apt uses for Debian 12)
#   EB_DEBIAN13_REFRESH  seconds after which the package lists inside are
#                        updated (and upgrades applied) again (default 86400)
# Its packages are .ci/debian13/packages-{build,test}.txt: the Debian 12
# lists with the names trixie changed (t64 libraries, hiredis 1.1.0 soname)
# and the Valkey server added.
#
# The checkout is bind-mounted at its own path inside the root, so paths in
# build logs are the host's and the build tree (build-debian13/) is reused
# between runs. /proc, /dev, /dev/pts and /sys are bind-mounted, /tmp and
# /dev/shm are fresh tmpfs; everything is unmounted on every exit path. The
# chroot shares the host's network namespace: tests that start servers use
# loopback ports they picked free, as they do on the host. Nothing inside
# starts services at install time (policy-rc.d says no), so installing
# redis-server or postgresql does not start a daemon on the host's loopback.
#
# Needs root (debootstrap, mount, chroot); installs debootstrap on the host
# when missing. Exit status: ctest's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$EB_ROOT"

ROOT=${EB_DEBIAN13_ROOT:-/var/cache/expiry-bridge/trixie}
REFRESH=${EB_DEBIAN13_REFRESH:-86400}
PKG_LISTS=(.ci/debian13/packages-build.txt .ci/debian13/packages-test.txt)

mode=test
build=build-debian13
cmake_extra=()
ctest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --asan)
        build=build-debian13-asan
        cmake_extra=(-DEB_SANITIZE=address,undefined -DEB_BUILD_BENCH=OFF)
        ;;
    --setup) mode=setup ;;
    --shell) mode=shell ;;
    --exec) mode=exec ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "usage: $0 [--asan|--setup|--shell|--exec] [-- CTEST_ARGS...|CMD...]" >&2; exit 64 ;;
    esac
    shift
done

[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (debootstrap, mount, chroot)" >&2; exit 1; }

# The archive this machine's apt uses (deb822 or one-line sources), so the
# root comes from the same place (mirror or proxy) as the host's packages.
host_mirror() {
    local u
    u=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
        grep -v -- '-security' | head -1)
    [ -n "$u" ] || u=$(grep -hsE '^deb\s' /etc/apt/sources.list | awk '{print $2}' |
        grep -v -- '-security' | head -1)
    echo "${u%/}"
}
MIRROR=${EB_DEBIAN13_MIRROR:-$(host_mirror)}
[ -n "$MIRROR" ] || { echo "$0: no Debian mirror found; set EB_DEBIAN13_MIRROR" >&2; exit 1; }

t_start=$(date +%s)
elapsed() { echo $(($(date +%s) - t_start)); }

# ------------------------------------------------------------ the root
# One run at a time makes or changes the root (two CI runs, or a developer
# and CI): the lock is held until this script exits.
mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9

make_root() {
    command -v debootstrap >/dev/null || {
        eb_say "installing debootstrap on the host"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    }
    eb_say "debootstrap trixie into $ROOT (once; kept for later runs)"
    rm -rf "$ROOT.new"
    # minbase: apt and the essential set; the project's lists add the rest.
    debootstrap --variant=minbase trixie "$ROOT.new" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
        { tail -30 "$ROOT.debootstrap.log"; exit 1; }
    cat >"$ROOT.new/etc/apt/sources.list" <<EOF
deb $MIRROR trixie main
deb $MIRROR trixie-updates main
deb ${MIRROR%/debian}/debian-security trixie-security main
EOF
    # Never start a service from a package's postinst: it would listen on
    # the host's loopback (shared network namespace).
    printf '#!/bin/sh\nexit 101\n' >"$ROOT.new/usr/sbin/policy-rc.d"
    chmod 755 "$ROOT.new/usr/sbin/policy-rc.d"
    # No documentation or translations: smaller root, faster installs.
    cat >"$ROOT.new/etc/dpkg/dpkg.cfg.d/01-eb-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/locale/*
EOF
    echo 'Acquire::Languages "none";' >"$ROOT.new/etc/apt/apt.conf.d/01-eb-nolang"
    mv "$ROOT.new" "$ROOT"
}

[ -x "$ROOT/usr/bin/apt-get" ] || make_root

# ------------------------------------------------------------ mounts
mounted=()
unmount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null ||
            echo "$0: could not unmount ${mounted[i]}" >&2
    done
    mounted=()
}
trap unmount_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mnt() { # mnt TARGET MOUNT-ARGS...
    local target="$ROOT$1"; shift
    mkdir -p "$target"
    mount "$@" "$target"
    mounted+=("$target")
    # Private: nothing mounted or unmounted under it reaches the host's tree.
    mount --make-private "$target"
}
# Mounts left by a run that was SIGKILLed (no trap ran): we hold the lock,
# so nothing else is using them.
findmnt -rn -o TARGET | { grep -F "$ROOT/" || true; } | sort -r | while read -r stale; do
    umount -l "$stale" || true
done
mnt /proc -t proc proc
mnt /sys --bind -o ro /sys
mnt /dev --bind /dev
mnt /dev/pts --bind /dev/pts
mnt /dev/shm -t tmpfs -o mode=1777,size=1g tmpfs
mnt /tmp -t tmpfs -o mode=1777,size=4g tmpfs
mnt "$EB_ROOT" --bind "$EB_ROOT"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"

# in_root CMD...: run in the root with a clean environment (the host's
# PATH, Python or Go must not leak in), passing the variables tests read.
in_root() {
    local pass=() v
    # Not EB_REQUIRE_FETCHED: the fetched SDKs live in the host's cache,
    # outside the root, so the tests that need them run on Debian 12 only.
    for v in CI ASAN_OPTIONS UBSAN_OPTIONS $(compgen -e | grep -E '^EB_' | grep -vx EB_REQUIRE_FETCHED || true); do
        [ -n "${!v:-}" ] && pass+=("$v=${!v}")
    done
    chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${pass[@]}" "$@"
}

# ------------------------------------------------------------ packages
t_pkg=$(date +%s)
lists_age=$(($(date +%s) - $(stat -c %Y "$ROOT/var/lib/apt/lists/partial" 2>/dev/null || echo 0)))
missing=()
for pkg in $(sed 's/#.*//' "${PKG_LISTS[@]}"); do
    in_root dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" ||
        missing+=("$pkg")
done
if [ "$lists_age" -ge "$REFRESH" ] || [ ${#missing[@]} -gt 0 ]; then
    eb_say "debian13: apt-get update (lists ${lists_age}s old)"
    in_root apt-get update -qq
    touch "$ROOT/var/lib/apt/lists/partial"
    if [ "$lists_age" -ge "$REFRESH" ]; then
        in_root env DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade >/dev/null
    fi
    if [ ${#missing[@]} -gt 0 ]; then
        eb_say "debian13: installing ${#missing[@]} packages"
        in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null
    fi
    in_root apt-get clean
fi
eb_say "debian13: root ready in $(($(date +%s) - t_pkg))s of package work ($(elapsed)s so far)"
in_root sh -c 'printf "  debian %s, hiredis %s, librdkafka %s, %s, %s\n" "$(cat /etc/debian_version)" \
    "$(pkg-config --modversion hiredis)" "$(pkg-config --modversion rdkafka)" \
    "$(redis-server --version | cut -d" " -f1-3)" "$(valkey-server --version | cut -d" " -f1-3)"' >&2

case "$mode" in
setup) exit 0 ;;
shell) in_root bash -c "cd '$EB_ROOT' && exec bash -i" || true; exit 0 ;;
exec) in_root bash -c 'cd "$0" && exec "$@"' "$EB_ROOT" "${ctest_args[@]}"; exit $? ;;
esac

# ------------------------------------------------------------ build + test
eb_say "debian13: build ($build, gcc, -Werror)"
t_build=$(date +%s)
in_root cmake -S "$EB_ROOT" -B "$EB_ROOT/$build" -DEB_WERROR=ON "${cmake_extra[@]}" >/dev/null
# -k: one run lists every error (a newer compiler warns in new places).
in_root cmake --build "$EB_ROOT/$build" -j "$(nproc)" -- -k >"$EB_ROOT/$build/build.log" 2>&1 ||
    { grep -E -A4 'error:' "$EB_ROOT/$build/build.log" | head -200; echo "(full log: $build/build.log)"; exit 1; }
eb_say "debian13: built in $(($(date +%s) - t_build))s"

eb_say "debian13: ctest ${ctest_args[*]}"
t_test=$(date +%s)
rc=0
if [ -n "${cmake_extra[*]}" ]; then
    in_root env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$EB_ROOT/$build" --output-on-failure --timeout 900 \
        -LE 'helm|kafka|registry|sdk|java' "${ctest_args[@]}" || rc=$?
else
    # The real Kafka brokers, the schema registry, the SDKs and the helm
    # build are run once, on Debian 12 (scripts/test.sh): the root has no
    # Java, Node.js or helm.
    in_root ctest --test-dir "$EB_ROOT/$build" --output-on-failure --timeout 900 \
        -LE 'kafka|registry|sdk|java' -E '^helm\.chart$' "${ctest_args[@]}" || rc=$?
fi
eb_say "debian13: ctest exit $rc in $(($(date +%s) - t_test))s; $(elapsed)s in all"
exit $rc
