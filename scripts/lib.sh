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
