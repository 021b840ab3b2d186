#!/usr/bin/env bash
# scripts/fetch-helm.sh -- the real helm (v4), built from its Go module into
# the cache ($EB_CACHE/helm/<version>/helm, see scripts/lib.sh), for the
# helm.* tests (tests/helm/test_chart.py). Prints the binary's path.
#
# Debian ships no helm. `go install helm.sh/helm/v4/cmd/helm@<version>`
# builds it with the machine's Go (helm v4.3 needs Go >= 1.26; Debian 12's
# golang-go is 1.19, so the Go first on PATH must be newer) from the Go module
# proxy; the module and build caches live under $EB_CACHE/go. Cold: 3 to 4.5
# minutes on 2 cores (measured); warm: nothing is fetched or built.
#
#   scripts/fetch-helm.sh          build once, print the path
#   EB_CACHE=DIR scripts/fetch-helm.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"

dir="$EB_CACHE/helm/$HELM_VERSION"
key="$HELM_MODULE@$HELM_VERSION"
if eb_fresh "$dir" "$key" && [ -x "$dir/helm" ]; then
    echo "$dir/helm"
    exit 0
fi
command -v go >/dev/null ||
    eb_fetch_failed "helm" /dev/null "No Go toolchain on PATH: helm $HELM_VERSION builds with Go >= 1.26."
mkdir -p "$dir" "$EB_CACHE/go"
log="$dir/build.log"
eb_say "building helm $HELM_VERSION from its Go module with $(go version | cut -d' ' -f3) (cold: 3 to 4.5 min on 2 cores)"
# -X: `helm version` then tells the exact release (the module alone says v4.3).
if ! GOBIN="$dir" GOMODCACHE="$EB_CACHE/go/mod" GOCACHE="$EB_CACHE/go/build" \
        GOFLAGS=-modcacherw GOTOOLCHAIN=local CGO_ENABLED=0 \
        go install -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
        "$key" >"$log" 2>&1; then
    eb_fetch_failed "helm $HELM_VERSION" "$log" \
        "go install $key failed: is the Go module proxy reachable (GOPROXY=$(go env GOPROXY)), and is Go >= 1.26 first on PATH?"
fi
"$dir/helm" version --short >>"$log" 2>&1 ||
    eb_fetch_failed "helm $HELM_VERSION" "$log" "the built helm does not run"
eb_done "$dir" "$key"
echo "$dir/helm"
