"""ebcache -- where the tests find what scripts/fetch-helm.sh and
scripts/fetch-sdks.sh took from the package registries (helm built from its
Go module, the CloudEvents SDKs, Maven artifacts).

The cache lives outside the repository, kept between runs: $EB_CACHE, by
default ~/.cache/expiry-bridge (scripts/lib.sh says the same). Versions come
from .ci/tool-versions. Each fetched directory holds a `.complete` stamp,
written last, so a half-finished fetch is never used.

A test that needs something not fetched yet calls missing(): it exits 77
(ctest: skipped) with the command that fetches it -- or fails (exit 1) when
EB_REQUIRE_FETCHED=1, which scripts/test.sh sets after fetching, so CI can
never pass by skipping.
"""

import os
import sys

SOURCE_DIR = os.environ.get(
    "EB_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def versions():
    """KEY -> VALUE of .ci/tool-versions."""
    out = {}
    with open(os.path.join(SOURCE_DIR, ".ci", "tool-versions")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def cache_dir():
    if os.environ.get("EB_CACHE"):
        return os.environ["EB_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "expiry-bridge")


def fetched(*parts):
    """The directory $EB_CACHE/<parts...> when its fetch completed, else None."""
    d = os.path.join(cache_dir(), *parts)
    return d if os.path.isfile(os.path.join(d, ".complete")) else None


def helm():
    """The helm binary: $EB_HELM, or the one scripts/fetch-helm.sh built; None if neither."""
    if os.environ.get("EB_HELM"):
        return os.environ["EB_HELM"]
    d = fetched("helm", versions()["HELM_VERSION"])
    return os.path.join(d, "helm") if d else None


def missing(test, what, script):
    """Skip (77) or, under EB_REQUIRE_FETCHED=1, fail: `what` is not fetched."""
    required = os.environ.get("EB_REQUIRE_FETCHED") == "1"
    print("%s %s: %s is not in the cache (%s). Run %s (EB_CACHE=%s)." % (
        "FAIL" if required else "SKIP", test, what, cache_dir(), script,
        os.environ.get("EB_CACHE", "unset")), flush=True)
    sys.exit(1 if required else 77)


def require(found, what, script):
    """For a test class's setUpClass: `found` (a fetched directory) when it
    is there; else unittest.SkipTest naming the fetch command, or an
    AssertionError under EB_REQUIRE_FETCHED=1 (as missing() for scripts)."""
    if found:
        return found
    if os.environ.get("EB_REQUIRE_FETCHED") == "1":
        raise AssertionError("%s is not fetched: %s" % (what, script))
    import unittest
    raise unittest.SkipTest("%s is not fetched (%s)" % (what, script))


# What scripts/fetch-sdks.sh names each SDK directory after: a digest of its
# input files (eb_hash in scripts/lib.sh: sha256 of their contents, 16 hex).
SDK_INPUTS = {
    "python": ["tests/sdk/python/requirements.txt"],
    "js": ["tests/sdk/js/package.json", "tests/sdk/js/package-lock.json"],
    "java": ["tests/sdk/java/pom.xml"],
}


def input_hash(*rel):
    import hashlib
    h = hashlib.sha256()
    for r in rel:
        with open(os.path.join(SOURCE_DIR, r), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def sdk(kind):
    """The fetched SDK directory of kind python|js|java, or None."""
    return fetched("sdk", "%s-%s" % (kind, input_hash(*SDK_INPUTS[kind])))
