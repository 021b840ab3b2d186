#!/usr/bin/python3
"""compare_helm.py HELM_OUTPUT RENDERER_OUTPUT -- the offline renderer
(tests/helm/render) must produce what real `helm template` produces.

Both files are parsed and compared object by object (kind, namespace, name),
so YAML formatting differences (yaml.v3 here, sigs.k8s.io/yaml in Helm) do
not count; any difference in data does, including the checksum annotation.
Used by the GitHub workflow, where a helm binary exists. Exit 0 when equal.
"""
import json
import sys

import yaml


def objects(path):
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    out = {}
    for d in docs:
        key = (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        if key in out:
            sys.exit("%s: %s appears twice" % (path, key))
        out[key] = d
    return out


def diff(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                yield "%s.%s: only in %s" % (path, k, "helm" if k in a else "renderer")
            else:
                yield from diff(a[k], b[k], "%s.%s" % (path, k))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from diff(x, y, "%s[%d]" % (path, i))
    elif a != b:
        yield "%s: helm %s, renderer %s" % (path, json.dumps(a), json.dumps(b))


def main():
    helm, ours = objects(sys.argv[1]), objects(sys.argv[2])
    problems = []
    for key in sorted(set(helm) | set(ours)):
        if key not in ours or key not in helm:
            problems.append("%s: only in %s" % (key, "helm" if key in helm else "renderer"))
            continue
        problems += ["%s %s" % ("/".join(key), d) for d in diff(helm[key], ours[key])]
    for p in problems:
        print(p)
    print("%s vs %s: %d objects, %d differences" % (
        sys.argv[1], sys.argv[2], len(helm), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
