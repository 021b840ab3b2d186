# scripts/lib.sh -- shared by scripts/demo.sh and scripts/test.sh.
# Installs Debian packages only when something is missing, and builds.

EB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

eb_say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# eb_install LIST_FILE...: apt-get install every package named in the files
# (one per line) that is not installed yet. Uses sudo when not root.
eb_install() {
    local missing=() pkg
    for pkg in $(cat "$@" | sed 's/#.*//'); do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    eb_say "installing ${#missing[@]} Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# eb_build DIR [cmake args...]: configure and build the tree into DIR.
eb_build() {
    local dir="$1"; shift
    cmake -S "$EB_ROOT" -B "$dir" -DEB_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

# eb_free_port: a TCP port on 127.0.0.1 that was free a moment ago.
eb_free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# eb_pg_bindir: the directory of initdb/pg_ctl of the installed server (full
# paths: some images carry other initdb links on PATH).
eb_pg_bindir() {
    local d
    d=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$d/initdb" ] || d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    echo "$d"
}

# eb_as_pg CMD...: run as the postgres user when root (initdb refuses root),
# as ourselves otherwise.
eb_as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# eb_pg_start DIR PORT: a throwaway PostgreSQL cluster in DIR on 127.0.0.1:PORT.
eb_pg_start() {
    local dir="$1" port="$2" bin
    bin=$(eb_pg_bindir)
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    eb_as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1
    eb_as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 30 \
        -o "-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
}

# eb_pg_stop DIR: stop the cluster started in DIR (fast shutdown).
eb_pg_stop() {
    eb_as_pg "$(eb_pg_bindir)/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}

# ------------------------------------------------ fetched tools and libraries
# What the tests take from the package registries rather than from Debian
# (helm built from its Go module, the CloudEvents SDKs, the Java consumer's
# Maven artifacts) lives in a cache outside the repository, kept between runs:
# $EB_CACHE, default ~/.cache/expiry-bridge. Versions: .ci/tool-versions.
EB_CACHE="${EB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/expiry-bridge}"
# shellcheck source=../.ci/tool-versions
source "$EB_ROOT/.ci/tool-versions"

# eb_fresh DIR KEY: DIR holds a complete fetch made for KEY (the versions and
# inputs it was made from), so nothing needs the network.
eb_fresh() { [ -f "$1/.complete" ] && [ "$(cat "$1/.complete")" = "$2" ]; }

# eb_done DIR KEY: mark DIR complete for KEY (last step of a fetch).
eb_done() { printf '%s' "$2" >"$1/.complete"; }

# eb_fetch_failed WHAT LOG HINT: say which fetch failed and why, then exit 1.
eb_fetch_failed() {
    printf '\033[1;31m==> fetching %s failed\033[0m (log: %s)\n' "$1" "$2" >&2
    tail -15 "$2" >&2 || true
    printf '%s\n' "$3" >&2
    exit 1
}

# eb_hash FILE...: a short digest of input files (pom.xml, package.json).
eb_hash() { cat "$@" | sha256sum | cut -c1-16; }
