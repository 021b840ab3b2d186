#!/usr/bin/env bash
# scripts/fetch-sdks.sh -- the official CloudEvents SDKs (Python, JavaScript,
# Java) and the Java sample consumer's Maven artifacts, from their package
# registries into the cache outside the repository ($EB_CACHE, default
# ~/.cache/expiry-bridge; see scripts/lib.sh), for the sdk.* tests
# (tests/sdk), the Python sample consumer and e2e.java_consumer.
#
#   python   pip install --no-deps --target of tests/sdk/python/requirements.txt
#            (pinned)                      -> $EB_CACHE/sdk/python-<hash>
#   js       npm ci of tests/sdk/js/package{,-lock}.json
#                                          -> $EB_CACHE/sdk/js-<hash>/node_modules
#   java     the artifacts of tests/sdk/java/pom.xml (Maven local repository
#            $EB_CACHE/m2)                 -> $EB_CACHE/sdk/java-<hash>/lib/*.jar
#   consumer examples/java-consumer built once online, so the e2e test can
#            build it offline (mvn -o)     -> $EB_CACHE/m2
#
# Each part is skipped when its stamp matches its inputs (warm: no network,
# well under a second); a failed fetch names the registry step that failed.
#
#   scripts/fetch-sdks.sh [python|js|java|consumer]...   (default: all)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$EB_ROOT"

M2="$EB_CACHE/m2"

fetch_python() {
    local req=tests/sdk/python/requirements.txt
    local dir="$EB_CACHE/sdk/python-$(eb_hash "$req")"
    eb_fresh "$dir" "$(cat "$req")" && return 0
    eb_say "fetching the Python CloudEvents SDK (pip) into $dir"
    rm -rf "$dir" && mkdir -p "$dir"
    /usr/bin/python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
        --no-deps --no-compile --target "$dir" -r "$req" >"$dir.log" 2>&1 ||
        eb_fetch_failed "the Python CloudEvents SDK" "$dir.log" \
            "pip install -r $req failed: is PyPI reachable, and python3-pip installed?"
    eb_done "$dir" "$(cat "$req")"
}

fetch_js() {
    local pkg=tests/sdk/js/package.json lock=tests/sdk/js/package-lock.json
    local dir="$EB_CACHE/sdk/js-$(eb_hash "$pkg" "$lock")"
    eb_fresh "$dir" "$(cat "$lock")" && return 0
    command -v npm >/dev/null ||
        eb_fetch_failed "the JavaScript CloudEvents SDK" /dev/null \
            "npm is not on PATH: the JavaScript SDK needs Node.js >= 20 with npm."
    eb_say "fetching the JavaScript CloudEvents SDK and kafkajs (npm ci) into $dir"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$pkg" "$lock" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --cache "$EB_CACHE/npm") \
        >"$dir.log" 2>&1 ||
        eb_fetch_failed "the JavaScript CloudEvents SDK" "$dir.log" \
            "npm ci failed: is the npm registry reachable?"
    eb_done "$dir" "$(cat "$lock")"
}

fetch_java() {
    local pom=tests/sdk/java/pom.xml
    local dir="$EB_CACHE/sdk/java-$(eb_hash "$pom")"
    eb_fresh "$dir" "$(cat "$pom")" && return 0
    command -v mvn >/dev/null ||
        eb_fetch_failed "the Java CloudEvents SDK" /dev/null "mvn is not on PATH (Debian: maven)."
    eb_say "fetching the Java CloudEvents SDK (Maven) into $dir"
    rm -rf "$dir" && mkdir -p "$dir"
    mvn -B -q -Dmaven.repo.local="$M2" -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$dir/lib" >"$dir.log" 2>&1 ||
        eb_fetch_failed "the Java CloudEvents SDK" "$dir.log" \
            "mvn dependency:copy-dependencies failed: is Maven Central reachable?"
    eb_done "$dir" "$(cat "$pom")"
}

fetch_consumer() {
    local pom=examples/java-consumer/pom.xml
    [ -f "$pom" ] || return 0
    local stamp="$EB_CACHE/sdk/java-consumer-$(eb_hash "$pom" .ci/tool-versions)"
    eb_fresh "$stamp" "$(cat "$pom" .ci/tool-versions)" && return 0
    command -v mvn >/dev/null ||
        eb_fetch_failed "the Java consumer's artifacts" /dev/null "mvn is not on PATH (Debian: maven)."
    eb_say "fetching the Java consumer's Maven artifacts into $M2"
    rm -rf "$stamp" && mkdir -p "$stamp"
    # A real build, online, once per client version the project uses: it
    # resolves the plugins and their own dependencies too, which
    # dependency:go-offline misses. The output goes to the stamp directory.
    local v
    for v in "$JAVA_KAFKA_CLIENTS_VERSION" "$JAVA_KAFKA_CLIENTS_MOCK_VERSION"; do
        mvn -B -q -Dmaven.repo.local="$M2" -f "$pom" -Dkafka.version="$v" \
            -Deb.buildDir="$stamp/build-$v" package >>"$stamp.log" 2>&1 ||
            eb_fetch_failed "the Java consumer's artifacts (kafka-clients $v)" "$stamp.log" \
                "mvn package failed: is Maven Central reachable?"
    done
    rm -rf "$stamp"/build-*
    eb_done "$stamp" "$(cat "$pom" .ci/tool-versions)"
}

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(python js java consumer)
for part in "${parts[@]}"; do
    case "$part" in
    python | js | java | consumer) "fetch_$part" ;;
    *) echo "usage: $0 [python|js|java|consumer]..." >&2; exit 64 ;;
    esac
done
