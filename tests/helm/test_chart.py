#!/usr/bin/python3
"""helm.chart -- the Helm chart, rendered and checked by the real helm.

helm (v4, built from its Go module by scripts/fetch-helm.sh into the cache,
see tests/support/ebcache.py; or $EB_HELM) runs `helm lint --strict` and
`helm template` on helm/expiry-bridge with its defaults, with
tests/helm/values-full.yaml (every optional object on), with each Redis
topology of tests/helm/topologies/ (standalone, Sentinel, Cluster, each
with and without TLS) and with every tests/helm/bad-values/*.yaml (each
must be refused by values.schema.json, through helm itself). Then every
manifest is parsed and checked for what matters in production: labels and
selectors, probes, the securityContext, the ConfigMap mounted as a
directory (so hot reload sees route edits), the restart checksum (routes,
connections, read-ahead and ledger excluded; coordination and, with it, the
Kafka connection included), secrets only by reference (Redis, sentinels,
Kafka), several replicas only with coordination, the PodDisruptionBudget
and pod anti-affinity, a grace period covering handover and drain, the Redis
TLS Secret mounted as a directory, settings of one topology refused with
another, the read-ahead and ledger values (the bridge's defaults, the
loader's limits: what the schema accepts `expiry-bridge check` accepts, and
what it refuses the bridge refuses), NOTES.txt (`helm install
--dry-run=client`), the chart README (every value documented, defaults in
sync). And every bridge config any test renders -- about 90 distinct ones --
must pass `expiry-bridge check` (render()); on a build without TLS
(hiredis 0.14) a rediss... config must be refused for that reason alone and
pass without TLS.

Exit 77 (ctest: skipped) when helm is not fetched yet -- exit 1 instead
under EB_REQUIRE_FETCHED=1 (scripts/test.sh). Environment: EB_BIN (the
expiry-bridge binary), EB_SOURCE_DIR, EB_BUILD_DIR (set by ctest), EB_HELM,
EB_CACHE.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import jsonschema
import yaml

import ebcache
from counted import Counted, assertions

SRC = os.environ.get("EB_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("EB_BUILD_DIR") or os.path.join(SRC, "build")
CHART = os.path.join(SRC, "helm", "expiry-bridge")
HERE = os.path.join(SRC, "tests", "helm")
FULL = os.path.join(HERE, "values-full.yaml")
BAD_DIR = os.path.join(HERE, "bad-values")
TOPOLOGIES = os.path.join(HERE, "topologies")
RELEASE, NAMESPACE = "shop", "shop-prod"
HELM = None  # set by main()

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

# ------------------------------------------------------------------- helm


class RenderError(Exception):
    pass


_tmpdir = None


def values_file(values):
    """Write a dict as a values file; return its path."""
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=_tmpdir)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(values, f, sort_keys=False)
    return path


def helm(*args):
    """Run helm; (exit status, stdout, stderr). Its INFO lines (e.g. "skipped
    value for expiry-bridge.unrouted: Not a table." when a values file puts a
    map where values.yaml has the string "drop") are not errors."""
    p = subprocess.run([HELM] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def value_args(files):
    args = []
    for f in files:
        args += ["-f", f if isinstance(f, str) else values_file(f)]
    return args


def run_helm_template(files=(), release=RELEASE, namespace=NAMESPACE):
    rc, out, err = helm("template", release, CHART, "--namespace", namespace,
                        *value_args(files))
    if rc != 0:
        raise RenderError(err.strip())
    return out


def render(*files, **kw):
    """`helm template`; return the list of manifests (dicts), in output order.
    Every bridge config it renders must pass `expiry-bridge check`
    (assert_bridge_accepts): whatever values a test renders, the chart
    cannot hand the pods a file the bridge refuses."""
    out = run_helm_template(files, **kw)
    docs = [d for d in yaml.safe_load_all(out) if d is not None]
    for d in docs:
        if d["kind"] == "ConfigMap":
            assert_bridge_accepts(d["data"]["config.yaml"], files)
    return docs, out


# What the bridge says when it was built without TLS (hiredis 0.14, Debian
# 12): set by main() from a probe, None when this build has TLS.
TLS_UNAVAILABLE = None
# Every distinct config text rendered, and how the bridge judged it: "ok",
# or "tls" (refused only because this build has no TLS; accepted without it).
CHECKED = {}
ERROR_LINE = re.compile(r"^\S+:\d+:\d+: ")


def assert_bridge_accepts(text, values):
    """`expiry-bridge check` on a config the chart rendered. On a build
    without TLS a rediss... config must be refused for exactly that reason
    and nothing else, and the same config without TLS (the scheme's plain
    twin, no redis.tls) must pass."""
    if text in CHECKED:
        return
    cfg = yaml.safe_load(text)
    url = str(cfg["redis"]["url"])
    rc, out = bridge_check(text, "render-%d" % len(CHECKED))
    if url.startswith("rediss") and TLS_UNAVAILABLE:
        errors = [line for line in out.splitlines() if ERROR_LINE.match(line)]
        if rc != 78 or len(errors) != 1 or TLS_UNAVAILABLE not in errors[0]:
            raise AssertionError("values %s: expected only the bridge's refusal of TLS, got "
                                 "exit %d:\n%s" % (values, rc, out))
        plain = copy.deepcopy(cfg)
        plain["redis"]["url"] = "redis" + url[len("rediss"):]
        plain["redis"].pop("tls", None)
        rc, out = bridge_check(yaml.safe_dump(plain, sort_keys=False),
                               "render-%d-plain" % len(CHECKED))
        CHECKED[text] = "tls"
    else:
        CHECKED[text] = "ok"
    if rc != 0:
        del CHECKED[text]
        raise AssertionError("values %s: `expiry-bridge check` refused the config the chart "
                             "rendered (exit %d):\n%s\n--- config ---\n%s" % (
                                 values, rc, out, text))


def probe_tls():
    """The bridge's message for a rediss:// URL when it has no TLS, or None."""
    rc, out = bridge_check('redis: {url: "rediss://r:6380"}\nkafka: {brokers: "k:9092"}\n'
                           'unrouted: {topic: t}\n', "tls-probe")
    if rc == 0:
        return None
    m = re.search(r"invalid redis.url: (TLS to Redis needs .*?); expected", out)
    if not m:
        raise AssertionError("the TLS probe config was refused for another reason:\n" + out)
    return m.group(1)


def notes_of(*files, skip_schema=False):
    """NOTES.txt as helm renders it after an install (`helm template` skips
    it): `helm install --dry-run=client -o json`, which needs no cluster."""
    rc, out, err = helm("install", RELEASE, CHART, "--namespace", NAMESPACE,
                        "--dry-run=client", "-o", "json", *value_args(files),
                        *(["--skip-schema-validation"] if skip_schema else []))
    if rc != 0:
        raise RenderError(err.strip())
    return json.loads(out)["info"]["notes"]


def lint_strict(*files):
    """`helm lint --strict` (templates rendered with missingkey=error, the
    values schema, the chart's metadata): (exit status, output)."""
    rc, out, err = helm("lint", "--strict", CHART, *value_args(files))
    return rc, out + err


def coalesce(defaults, user):
    """User values over chart defaults, as helm coalesces them: maps merge
    deeply, a user null deletes the key, anything else the user set wins."""
    out = dict(defaults)
    for k, v in user.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = coalesce(out[k], v)
        else:
            out[k] = v
    return out


def merged_values(*files):
    """The values helm validates against values.schema.json (values.yaml
    coalesced with the files), for jsonschema's exact error locations."""
    values = load_yaml(os.path.join(CHART, "values.yaml"))
    for f in files:
        values = coalesce(values, (load_yaml(f) if isinstance(f, str) else f) or {})
    return values


def find(docs, kind, component=None):
    got = [d for d in docs if d["kind"] == kind and (
        component is None or
        d["metadata"]["labels"].get("app.kubernetes.io/component") == component)]
    return got


def one(docs, kind, component=None):
    got = find(docs, kind, component)
    if len(got) != 1:
        raise AssertionError("expected one %s%s, found %d" % (
            kind, " (%s)" % component if component else "", len(got)))
    return got[0]


def pod_spec(deploy):
    return deploy["spec"]["template"]["spec"]


def container(deploy, name):
    for c in pod_spec(deploy)["containers"]:
        if c["name"] == name:
            return c
    raise AssertionError("no container %s" % name)


def bridge_config(docs):
    cm = one(docs, "ConfigMap")
    return yaml.safe_load(cm["data"]["config.yaml"]), cm["data"]["config.yaml"]


def checksum(docs):
    d = one(docs, "Deployment", "bridge")
    return d["spec"]["template"]["metadata"]["annotations"]["checksum/restart-config"]


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


class ChartTest(Counted):
    @classmethod
    def setUpClass(cls):
        cls.defaults, cls.defaults_text = render()
        cls.full, cls.full_text = render(FULL)
        cls.values = load_yaml(os.path.join(CHART, "values.yaml"))
        cls.full_values = load_yaml(FULL)
        cls.renders = {"defaults": cls.defaults, "full": cls.full}

    # ------------------------------------------------------------ Chart.yaml

    def test_chart_yaml_is_v2_with_app_version_from_version_h(self):
        chart = load_yaml(os.path.join(CHART, "Chart.yaml"))
        with open(os.path.join(SRC, "src", "core", "version.h")) as f:
            ver = re.search(r'#define EB_VERSION_STR "([^"]+)"', f.read()).group(1)
        self.assertEqual(chart["apiVersion"], "v2")
        self.assertEqual(chart["name"], "expiry-bridge")
        self.assertEqual(chart["appVersion"], ver,
                         "Chart.yaml appVersion must follow src/core/version.h")
        self.assertRegex(chart["version"], r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
        self.assertIsInstance(chart["appVersion"], str, "quote appVersion")

    # ------------------------------------------------------- object inventory

    def test_defaults_render_only_the_core_objects(self):
        kinds = sorted((d["kind"], d["metadata"]["labels"]["app.kubernetes.io/component"])
                       for d in self.defaults)
        self.assertEqual(kinds, [("ConfigMap", "bridge"), ("Deployment", "bridge"),
                                 ("PodDisruptionBudget", "bridge"), ("Service", "bridge"),
                                 ("ServiceAccount", "bridge")])

    def test_full_values_render_every_optional_object(self):
        kinds = sorted((d["kind"], d["metadata"]["labels"]["app.kubernetes.io/component"])
                       for d in self.full)
        self.assertEqual(kinds, [
            ("ConfigMap", "bridge"), ("Deployment", "bridge"), ("Deployment", "consumer"),
            ("PodDisruptionBudget", "bridge"), ("Secret", "bridge"), ("Service", "bridge"),
            ("ServiceAccount", "bridge"), ("ServiceMonitor", "bridge")])

    def test_servicemonitor_and_pdb_only_when_enabled(self):
        for toggle, kind in (("serviceMonitor", "ServiceMonitor"),
                             ("podDisruptionBudget", "PodDisruptionBudget")):
            on, _ = render({toggle: {"enabled": True}})
            self.assertEqual(len(find(on, kind)), 1, kind)
            off, _ = render(FULL, {toggle: {"enabled": False}})
            self.assertEqual(find(off, kind), [], kind)
            off, _ = render({toggle: {"enabled": False}})
            self.assertEqual(find(off, kind), [], kind)

    def test_consumer_and_serviceaccount_only_when_enabled(self):
        off, _ = render(FULL, {"consumer": {"enabled": False}})
        self.assertEqual(find(off, "Deployment", "consumer"), [])
        no_sa, _ = render({"serviceAccount": {"create": False}})
        self.assertEqual(find(no_sa, "ServiceAccount"), [])
        self.assertEqual(pod_spec(one(no_sa, "Deployment"))["serviceAccountName"], "default")

    def test_every_manifest_has_kind_name_namespace_and_standard_labels(self):
        for which, docs in self.renders.items():
            for d in docs:
                what = "%s %s/%s" % (which, d.get("kind"), d.get("metadata", {}).get("name"))
                self.assertIn("apiVersion", d, what)
                md = d["metadata"]
                self.assertRegex(md["name"], DNS1123, what)
                self.assertLessEqual(len(md["name"]), 63, what)
                if d["kind"] != "ServiceMonitor":
                    self.assertEqual(md["namespace"], NAMESPACE, what)
                labels = md["labels"]
                for k, v in (("app.kubernetes.io/name", "expiry-bridge"),
                             ("app.kubernetes.io/instance", RELEASE),
                             ("app.kubernetes.io/managed-by", "Helm"),
                             ("app.kubernetes.io/part-of", "expiry-bridge"),
                             ("helm.sh/chart", "expiry-bridge-0.2.0")):
                    self.assertEqual(labels.get(k), v, "%s label %s" % (what, k))
                self.assertIn("app.kubernetes.io/version", labels, what)
                for v in labels.values():
                    self.assertIsInstance(v, str, "%s: label values are strings" % what)
        for d in self.full:
            self.assertEqual(d["metadata"]["labels"]["cost-center"], "4711", d["kind"])

    def test_servicemonitor_lives_in_its_namespace_and_selects_the_release(self):
        sm = one(self.full, "ServiceMonitor")
        self.assertEqual(sm["metadata"]["namespace"], "monitoring")
        self.assertEqual(sm["spec"]["namespaceSelector"]["matchNames"], [NAMESPACE])
        self.assertEqual(sm["metadata"]["labels"]["release"], "kube-prometheus-stack")
        ep = sm["spec"]["endpoints"]
        self.assertEqual([(e["port"], e["path"]) for e in ep], [("metrics", "/metrics")])
        self.assertEqual(ep[0]["interval"], "15s")
        svc = one(self.full, "Service")
        self.assertLessEqual(sm["spec"]["selector"]["matchLabels"].items(),
                             svc["metadata"]["labels"].items())

    def test_helm_refuses_release_names_longer_than_53(self):
        with self.assertRaises(RenderError) as e:
            render(release="r" * 54)
        self.assertIn("invalid release name", str(e.exception))

    def test_names_follow_overrides(self):
        self.assertEqual({d["metadata"]["name"] for d in self.defaults},
                         {"shop-expiry-bridge"})
        docs, _ = render(release="expiry-bridge-eu")
        self.assertEqual(one(docs, "Deployment")["metadata"]["name"], "expiry-bridge-eu")
        docs, _ = render({"nameOverride": "eb"})
        self.assertEqual(one(docs, "Deployment")["metadata"]["name"], "shop-eb")
        self.assertEqual(one(self.full, "Deployment", "consumer")["metadata"]["name"],
                         "eb-shop-consumer")
        long_release = "r" * 53  # the longest release name helm accepts
        docs, _ = render(FULL, {"fullnameOverride": None}, release=long_release)
        for d in docs:
            self.assertLessEqual(len(d["metadata"]["name"]), 63)
            self.assertRegex(d["metadata"]["name"], DNS1123)

    # ---------------------------------------------------- selectors and pods

    def test_selectors_match_their_pods_and_only_those(self):
        for which, docs in self.renders.items():
            bridge = one(docs, "Deployment", "bridge")
            sel = bridge["spec"]["selector"]["matchLabels"]
            pod_labels = bridge["spec"]["template"]["metadata"]["labels"]
            self.assertLessEqual(sel.items(), pod_labels.items(), which)
            svc = one(docs, "Service")
            self.assertLessEqual(svc["spec"]["selector"].items(), pod_labels.items(), which)
            self.assertEqual(svc["spec"]["selector"], sel, which)
            for pdb in find(docs, "PodDisruptionBudget"):
                self.assertEqual(pdb["spec"]["selector"]["matchLabels"], sel, which)
            for consumer in find(docs, "Deployment", "consumer"):
                csel = consumer["spec"]["selector"]["matchLabels"]
                clabels = consumer["spec"]["template"]["metadata"]["labels"]
                self.assertLessEqual(csel.items(), clabels.items())
                # Neither Deployment (nor the Service) may adopt the other's pods.
                self.assertFalse(sel.items() <= clabels.items(),
                                 "bridge selector matches consumer pods")
                self.assertFalse(csel.items() <= pod_labels.items(),
                                 "consumer selector matches bridge pods")

    def test_pod_labels_leave_out_the_chart_version(self):
        # A chart bump that changes nothing in the pod must not roll it.
        bridge = one(self.full, "Deployment", "bridge")
        labels = bridge["spec"]["template"]["metadata"]["labels"]
        self.assertNotIn("helm.sh/chart", labels)
        self.assertEqual(labels["team"], "platform")

    def test_replicas_default_to_two_splitting_units_through_coordination(self):
        self.assertEqual(one(self.defaults, "Deployment")["spec"]["replicas"], 2)
        self.assertEqual(self.values["replicaCount"], 2)
        with open(os.path.join(CHART, "values.yaml")) as f:
            text = f.read()
        self.assertRegex(text, r"(?s)exactly one live replica.*\nreplicaCount: 2\n",
                         "values.yaml must say what several replicas do")
        self.assertNotIn("twice", text[:text.index("\nreplicaCount:")],
                         "the old warning (replicas duplicate plain routes) is gone")
        cfg, _ = bridge_config(self.defaults)
        self.assertEqual(cfg["coordination"], {
            "enabled": True, "group": "expiry-bridge.shop-prod.shop-expiry-bridge",
            "topic": "expiry-bridge.units.shop-prod.shop-expiry-bridge",
            "session_timeout": "6s", "heartbeat_interval": "1s", "handover_grace": "5s"})

    def test_strategy_overlaps_pods_by_default_and_recreate_has_no_rolling_update(self):
        s = one(self.defaults, "Deployment")["spec"]["strategy"]
        self.assertEqual(s, {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
        s = one(self.full, "Deployment", "bridge")["spec"]["strategy"]
        self.assertEqual(s, {"type": "Recreate"})

    def test_probes_hit_healthz_and_readyz_on_the_metrics_port(self):
        for which, docs, port in (("defaults", self.defaults, 9464), ("full", self.full, 9500)):
            c = container(one(docs, "Deployment", "bridge"), "bridge")
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            self.assertEqual(ports, {"metrics": port}, which)
            self.assertEqual(c["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "metrics"})
            self.assertEqual(c["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "metrics"})
            self.assertGreaterEqual(c["livenessProbe"]["failureThreshold"], 3)
            svc = one(docs, "Service")
            self.assertEqual(svc["spec"]["ports"],
                             [{"name": "metrics", "port": port, "targetPort": "metrics",
                               "protocol": "TCP"}])
            cfg, _ = bridge_config(docs)
            self.assertTrue(cfg["http"]["listen"].endswith(":%d" % port), which)
        cfg, _ = bridge_config(self.full)
        self.assertEqual(cfg["http"]["listen"], "[::]:9500")

    def test_security_context_is_non_root_read_only_and_drops_everything(self):
        for which, docs in self.renders.items():
            for d in find(docs, "Deployment"):
                what = "%s %s" % (which, d["metadata"]["name"])
                ps = pod_spec(d)
                self.assertIs(ps["securityContext"]["runAsNonRoot"], True, what)
                self.assertEqual(ps["securityContext"]["runAsUser"], 10001, what)
                self.assertEqual(ps["securityContext"]["seccompProfile"],
                                 {"type": "RuntimeDefault"}, what)
                self.assertIs(ps["automountServiceAccountToken"], False, what)
                for c in ps["containers"]:
                    sc = c["securityContext"]
                    self.assertIs(sc["runAsNonRoot"], True, what)
                    self.assertIs(sc["readOnlyRootFilesystem"], True, what)
                    self.assertIs(sc["allowPrivilegeEscalation"], False, what)
                    self.assertEqual(sc["capabilities"], {"drop": ["ALL"]}, what)
                    self.assertNotIn("privileged", sc, what)

    def test_config_is_mounted_as_a_directory_never_subpath(self):
        for which, docs in self.renders.items():
            d = one(docs, "Deployment", "bridge")
            c = container(d, "bridge")
            self.assertEqual(c["args"][:2], ["run", "-c"], which)
            cfg_path = c["args"][2]
            mounts = {m["name"]: m for m in c["volumeMounts"]}
            m = mounts["config"]
            self.assertNotIn("subPath", m, which)
            self.assertNotIn("subPathExpr", m, which)
            self.assertEqual(m["mountPath"], os.path.dirname(cfg_path), which)
            self.assertIs(m["readOnly"], True)
            vols = {v["name"]: v for v in pod_spec(d)["volumes"]}
            cm = one(docs, "ConfigMap")
            self.assertEqual(vols["config"]["configMap"]["name"], cm["metadata"]["name"])
            self.assertNotIn("items", vols["config"]["configMap"],
                             "items would rename, not break, the swap; keep it simple")
            self.assertIn(os.path.basename(cfg_path), cm["data"], which)
            self.assertIn("/tmp", [x["mountPath"] for x in c["volumeMounts"]])
            for dep in find(docs, "Deployment"):
                for cont in pod_spec(dep)["containers"]:
                    for vm in cont.get("volumeMounts", []):
                        self.assertNotIn("subPath", vm, "%s %s" % (which, vm))

    def test_termination_grace_covers_the_handover_and_the_drain(self):
        d = one(self.defaults, "Deployment")
        self.assertEqual(pod_spec(d)["terminationGracePeriodSeconds"], 30)
        cfg, _ = bridge_config(self.defaults)
        self.assertEqual(cfg["kafka"]["drain_timeout"], "20s")
        self.assertEqual(cfg["coordination"]["handover_grace"], "5s")
        # 5s handover + 20s drain + 5s = 30s: the default fits exactly.
        with self.assertRaises(RenderError) as e:
            render({"terminationGracePeriodSeconds": 29})
        self.assertIn("terminationGracePeriodSeconds (29) must be at least "
                      "coordination.handoverGrace (5s) + kafka.drainTimeout (20s) + 5s = 30s",
                      str(e.exception))
        with self.assertRaises(RenderError):
            render({"coordination": {"handoverGrace": "5001ms"}})
        docs, _ = render({"coordination": {"handoverGrace": "15s"},
                          "terminationGracePeriodSeconds": 40})
        self.assertEqual(pod_spec(one(docs, "Deployment"))["terminationGracePeriodSeconds"], 40)
        # Without coordination there is no handover: the drain alone counts.
        solo = {"replicaCount": 1, "coordination": {"enabled": False}}
        with self.assertRaises(RenderError) as e:
            render(solo, {"terminationGracePeriodSeconds": 20})
        self.assertIn("terminationGracePeriodSeconds (20) must be at least kafka.drainTimeout",
                      str(e.exception))
        render(solo, {"terminationGracePeriodSeconds": 25})
        with self.assertRaises(RenderError):
            render({"kafka": {"drainTimeout": "1m"}, "terminationGracePeriodSeconds": 65})
        docs, _ = render({"kafka": {"drainTimeout": "1m"}, "terminationGracePeriodSeconds": 70})
        self.assertEqual(pod_spec(one(docs, "Deployment"))["terminationGracePeriodSeconds"], 70)
        render(solo, {"kafka": {"drainTimeout": "24500ms"}})  # 25s rounded up + 5 = 30: fits

    # ---------------------------------------------------- checksum annotation

    def test_checksum_annotation_is_a_sha256(self):
        for docs in self.renders.values():
            self.assertRegex(checksum(docs), r"^[0-9a-f]{64}$")
        self.assertNotEqual(checksum(self.defaults), checksum(self.full))

    def test_checksum_ignores_reloadable_edits_which_still_reach_the_configmap(self):
        base = checksum(self.defaults)
        _, base_text = bridge_config(self.defaults)
        new_routes = {"routes": [
            {"name": "carts", "match": "cart:{id}", "topic": "shop.cart.expired",
             "events": ["expired", "evicted"], "format": "json", "ledger": "observed"}],
            "unrouted": {"topic": "redis.unrouted"}}
        docs, _ = render(new_routes)
        self.assertEqual(checksum(docs), base, "a route edit must not roll the pod")
        cfg, text = bridge_config(docs)
        self.assertNotEqual(text, base_text)
        self.assertEqual(cfg["routes"][0]["name"], "carts")
        self.assertEqual(cfg["unrouted"], {"topic": "redis.unrouted"})
        # Same for the full values: routes are outside the hash there too.
        docs, _ = render(FULL, {"routes": new_routes["routes"]})
        self.assertEqual(checksum(docs), checksum(self.full))
        # The bridge applies log.level on reload too.
        docs, _ = render({"log": {"level": "debug"}})
        self.assertEqual(checksum(docs), base)
        self.assertEqual(bridge_config(docs)[0]["log"]["level"], "debug")

    def test_checksum_ignores_connection_settings_the_bridge_reconnects_live(self):
        redis_changes = [
            {"redis": {"url": "redis://other:6379"}},
            {"redis": {"url": "redis-cluster://n1:6379,n2:6379"}},
            {"redis": {"databases": [0]}},
            {"redis": {"heartbeatTimeout": "9s"}},
            {"redis": {"topologyInterval": "3s"}},
            {"kafka": {"queue": {"maxEvents": 5}}},
            {"log": {"statsInterval": "10s"}},
        ]
        # The Kafka connection too -- but only without coordination, whose
        # group keeps the connection it started with (next test).
        kafka_changes = [
            {"kafka": {"brokers": "kafka-2:9092"}},
            {"kafka": {"client": {"compression.type": "zstd"}}},
        ]
        solo = {"replicaCount": 1, "coordination": {"enabled": False}}
        for base_files, changes in (((), redis_changes), ((solo,), redis_changes + kafka_changes)):
            base_docs, _ = render(*base_files)
            base = checksum(base_docs)
            _, base_text = bridge_config(base_docs)
            for ch in changes:
                docs, _ = render(*(base_files + (ch,)))
                self.assertEqual(checksum(docs), base, "%s must reach the pod by reload" % ch)
                self.assertNotEqual(bridge_config(docs)[1], base_text, "%s reaches the file" % ch)

    def test_checksum_rolls_the_pods_for_coordination_and_its_kafka_connection(self):
        base = checksum(self.defaults)
        changes = [
            {"coordination": {"group": "other"}},
            {"coordination": {"topic": "other.units"}},
            {"coordination": {"sessionTimeout": "10s"}},
            {"coordination": {"heartbeatInterval": "2s"}},
            {"coordination": {"handoverGrace": "3s"}},
            {"kafka": {"brokers": "kafka-2:9092"}},
            {"kafka": {"client": {"compression.type": "zstd"}}},
            {"kafka": {"sasl": {"enabled": True, "username": "u", "existingSecret": "k"}}},
            {"replicaCount": 1, "coordination": {"enabled": False}},
        ]
        seen = {base}
        for ch in changes:
            docs, _ = render(ch)
            self.assertNotIn(checksum(docs), seen, "checksum did not change for %s" % ch)
            seen.add(checksum(docs))
        # The release's name is in the default group: another release, another group.
        docs, _ = render(release="shop-eu")
        self.assertNotEqual(checksum(docs), base)
        # Scaling is not a restart.
        docs, _ = render({"replicaCount": 5})
        self.assertEqual(checksum(docs), base)

    def test_checksum_changes_with_every_setting_that_needs_a_restart(self):
        base = checksum(self.defaults)
        changes = [
            {"redis": {"existingSecret": "redis-auth"}},
            {"redis": {"password": "s3cret"}},
            {"redis": {"url": "redis-sentinel://s1:26379/m", "sentinel": {"existingSecret": "s"}}},
            {"redis": {"url": "redis-sentinel://s1:26379/m", "sentinel": {"password": "p"}}},
            {"kafka": {"sasl": {"enabled": True, "username": "u", "existingSecret": "k"}}},
            {"extraEnv": [{"name": "TZ", "value": "UTC"}]},
            {"extraEnvFrom": [{"secretRef": {"name": "more"}}]},
        ]
        seen = {base}
        for ch in changes:
            docs, _ = render(ch)
            self.assertNotIn(checksum(docs), seen, "checksum did not change for %s" % ch)
            seen.add(checksum(docs))
        # Changing the key inside an existing Secret, or the inline value.
        a, _ = render({"redis": {"existingSecret": "r", "existingSecretPasswordKey": "a"}})
        b, _ = render({"redis": {"existingSecret": "r", "existingSecretPasswordKey": "b"}})
        self.assertNotEqual(checksum(a), checksum(b))
        a, _ = render({"redis": {"password": "one"}})
        b, _ = render({"redis": {"password": "two"}})
        self.assertNotEqual(checksum(a), checksum(b))

    # ---------------------------------------------------------------- secrets

    def test_secrets_reach_the_pod_only_through_secret_key_refs(self):
        env = {e["name"]: e for e in container(one(self.full, "Deployment", "bridge"), "bridge")["env"]}
        self.assertEqual(env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"],
                         {"name": "eb-shop", "key": "redis-password"})
        self.assertEqual(env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"],
                         {"name": "kafka-user-expiry-bridge", "key": "password"})
        for name in ("REDIS_PASSWORD", "KAFKA_SASL_PASSWORD"):
            self.assertNotIn("value", env[name])
        cenv = {e["name"]: e for e in container(one(self.full, "Deployment", "consumer"), "consumer")["env"]}
        self.assertEqual(cenv["PGPASSWORD"]["valueFrom"]["secretKeyRef"],
                         {"name": "eb-shop", "key": "postgres-password"})
        secret = one(self.full, "Secret")
        import base64
        self.assertEqual({k: base64.b64decode(v).decode() for k, v in secret["data"].items()},
                         {"redis-password": "inline-redis-secret",
                          "postgres-password": "inline-pg-secret"})
        cfg, text = bridge_config(self.full)
        self.assertEqual(cfg["redis"]["password"], "${REDIS_PASSWORD}")
        self.assertEqual(cfg["kafka"]["client"]["sasl.password"], "${KAFKA_SASL_PASSWORD}")
        # The secret values appear in the Secret and nowhere else.
        for d in self.full:
            if d["kind"] == "Secret":
                continue
            dumped = json.dumps(d)
            for s in ("inline-redis-secret", "inline-pg-secret"):
                self.assertNotIn(s, dumped, "%s leaks a secret" % d["kind"])

    def test_no_secret_no_env_and_existing_secret_needs_no_chart_secret(self):
        c = container(one(self.defaults, "Deployment"), "bridge")
        self.assertNotIn("env", c)
        cfg, _ = bridge_config(self.defaults)
        self.assertNotIn("password", cfg["redis"])
        docs, _ = render({"redis": {"existingSecret": "redis-auth"}})
        self.assertEqual(find(docs, "Secret"), [])
        env = container(one(docs, "Deployment"), "bridge")["env"]
        self.assertEqual(env, [{"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": "redis-auth", "key": "redis-password"}}}])

    def test_ambiguous_or_incomplete_secret_settings_fail_to_render(self):
        cases = [
            ({"redis": {"existingSecret": "a", "password": "b"}}, "not both"),
            ({"kafka": {"sasl": {"enabled": True, "username": "u"}}}, "kafka.sasl.existingSecret"),
            ({"kafka": {"sasl": {"enabled": True, "existingSecret": "k"}}}, "kafka.sasl.username"),
            ({"kafka": {"client": {"sasl.password": "x"}, "sasl": {
                "enabled": True, "username": "u", "existingSecret": "k"}}}, "managed by kafka.sasl"),
            ({"consumer": {"enabled": True, "existingSecret": "a", "password": "b"}}, "not both"),
        ]
        for values, msg in cases:
            with self.assertRaises(RenderError, msg=str(values)) as e:
                render(values)
            self.assertIn(msg, str(e.exception))

    # ---------------------------------------------------- the rendered config

    def test_rendered_config_carries_the_values(self):
        cfg, _ = bridge_config(self.defaults)
        self.assertEqual(sorted(cfg), ["coordination", "http", "kafka", "ledger", "log", "redis",
                                       "routes", "unrouted"])
        self.assertEqual(cfg["redis"]["url"], "redis://redis-master:6379")
        self.assertNotIn("databases", cfg["redis"], '"all" is the bridge\'s default, and a URL '
                         "that selects a database needs the key left out")
        self.assertEqual(cfg["redis"]["topology_interval"], "1s")
        for key in ("sentinel", "tls"):
            self.assertNotIn(key, cfg["redis"])
        self.assertEqual(cfg["kafka"]["brokers"], "kafka:9092")
        self.assertEqual(cfg["kafka"]["queue"], {"max_events": 100000, "max_bytes": "256MiB"})
        self.assertEqual(cfg["routes"], self.values["routes"])
        self.assertEqual(cfg["routes"][0]["ledger"], "off")
        self.assertEqual(cfg["unrouted"], "drop")

        cfg, text = bridge_config(self.full)
        self.assertEqual(cfg["redis"]["url"], "redis://shop-redis-master.shop-prod.svc:6379",
                         "redis.url goes through tpl")
        self.assertEqual(cfg["redis"]["databases"], [0, 3])
        self.assertIs(cfg["redis"]["configure_notifications"], False)
        self.assertEqual(cfg["redis"]["topology_interval"], "500ms")
        self.assertEqual(cfg["coordination"], {
            "enabled": True, "group": "shop-expiry-bridge", "topic": "shop.expiry-bridge.units",
            "session_timeout": "9s", "heartbeat_interval": "3s", "handover_grace": "10s"})
        self.assertEqual(cfg["routes"], self.full_values["routes"])
        client = cfg["kafka"]["client"]
        for k, v in client.items():
            self.assertIsInstance(v, str, "librdkafka property %s must be a string" % k)
        self.assertEqual(client["message.max.bytes"], "2000000", "not 2e+06")
        self.assertEqual(client["socket.keepalive.enable"], "true")
        self.assertEqual(client["security.protocol"], "SASL_SSL")
        self.assertEqual(client["sasl.username"], "expiry-bridge")
        self.assertEqual(cfg["kafka"]["queue"]["max_events"], 2000000)
        self.assertEqual(cfg["log"], {"level": "debug", "stats_interval": "30s"})

    def test_duplicate_route_names_fail_to_render(self):
        r = {"name": "a", "match": "a:", "topic": "t"}
        with self.assertRaises(RenderError) as e:
            render({"routes": [r, dict(r, match="b:")]})
        self.assertIn('route name "a" is used twice', str(e.exception))

    def test_output_has_no_template_residue(self):
        for which, text in (("defaults", self.defaults_text), ("full", self.full_text)):
            for bad in ("<no value>", "<nil>", "%!", "map[", "1e+0", "ZgotmplZ"):
                self.assertNotIn(bad, text, which)

    def test_config_passes_expiry_bridge_check(self):
        eb = os.environ.get("EB_BIN")
        self.assertTrue(eb and os.access(eb, os.X_OK),
                        "EB_BIN must name the expiry-bridge binary (ctest sets it)")
        env = eb_env()
        failures = []
        for which, docs in self.renders.items():
            _, text = bridge_config(docs)
            path = os.path.join(_tmpdir, "config-%s.yaml" % which)
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([eb, "check", "-c", path], capture_output=True, text=True,
                               env=env, timeout=30)
            if p.returncode != 0:
                failures.append("%s values: `expiry-bridge check -c %s` exited %d:\n%s%s" % (
                    which, path, p.returncode, p.stdout, p.stderr))
        self.assertEqual(failures, [], "\n\nexpiry-bridge check rejected the config the chart "
                         "renders. If src/config/config.c is still the stub (the config loader has "
                         "not landed), this is expected to fail until it does; otherwise the "
                         "chart and the config loader disagree:\n\n" + "\n".join(failures))

    def test_config_matches_the_config_json_schema(self):
        """config/config.schema.json (the daemon's own schema of its file)
        accepts what the chart renders."""
        path = os.path.join(SRC, "config", "config.schema.json")
        if not os.path.exists(path):
            self.skipTest("config/config.schema.json does not exist yet")
        schema = load_yaml(path)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        for which, docs in self.renders.items():
            cfg, _ = bridge_config(docs)
            errors = ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
                      for e in cls(schema).iter_errors(cfg)]
            self.assertEqual(errors, [], which)

    # ------------------------------------------- read-ahead and the ledger

    def test_read_ahead_and_ledger_default_to_the_bridges_own_defaults(self):
        cfg, _ = bridge_config(self.defaults)
        self.assertEqual(cfg["redis"]["read_ahead"], {"max_events": 1000000, "max_bytes": "64MiB"})
        self.assertEqual(cfg["ledger"], {
            "key_prefix": "expiry-bridge:ledger:", "sweep_interval": "1s", "sweep_grace": "250ms",
            "sweep_batch": 500, "claim_ttl": "10s", "remember_delivered": "30s",
            "buckets": 1})
        # The chart writes its defaults out, so they must be the loader's
        # (config/config.schema.json is generated from src/config/config_schema.c).
        path = os.path.join(SRC, "config", "config.schema.json")
        if not os.path.exists(path):
            self.skipTest("config/config.schema.json does not exist yet")
        defs = load_yaml(path)["$defs"]
        for section, rendered in (("read_ahead", cfg["redis"]["read_ahead"]),
                                  ("ledger", cfg["ledger"])):
            props = defs[section]["properties"]
            self.assertEqual(sorted(props), sorted(rendered),
                             "the chart renders every key of %s" % section)
            for key, prop in props.items():
                want = prop["default"]
                if isinstance(want, str) and want.startswith('"'):
                    want = json.loads(want)   # strings are documented quoted
                self.assertEqual(rendered[key], want, "default of %s.%s" % (section, key))

    def test_read_ahead_ledger_and_route_payloads_reach_the_config(self):
        cfg, text = bridge_config(self.full)
        self.assertEqual(cfg["redis"]["read_ahead"], {"max_events": 3000000, "max_bytes": "128MiB"})
        self.assertEqual(cfg["ledger"], {
            "key_prefix": "{timers}:shop:", "sweep_interval": "2s", "sweep_grace": "500ms",
            "sweep_batch": 10000, "claim_ttl": "1500ms", "remember_delivered": "2m",
            "buckets": 1})
        # "{key}:payload" and "{timers}:..." unquoted would be YAML flow mappings.
        self.assertIn('    payload: "{key}:payload"\n', text)
        self.assertIn('  key_prefix: "{timers}:shop:"\n', text)
        routes = {r["name"]: r for r in cfg["routes"]}
        self.assertEqual(routes["order-payment-timeout"]["payload"], "{key}:payload")
        self.assertEqual({n: r.get("ledger") for n, r in routes.items()},
                         {"order-payment-timeout": "armed", "session-evicted": "off",
                          "cart-expired": "observed"})
        # A payload on a route without a ledger key, and a capture in it.
        docs, _ = render({"routes": [{"name": "carts", "match": "cart:{id}", "topic": "t",
                                      "payload": "cart-data:{id}"}]})
        self.assertEqual(bridge_config(docs)[0]["routes"],
                         [{"name": "carts", "match": "cart:{id}", "topic": "t",
                           "payload": "cart-data:{id}"}])

    def test_checksum_ignores_read_ahead_and_ledger_which_reach_the_config(self):
        changes = [
            {"redis": {"readAhead": {"maxEvents": 5}}},
            {"redis": {"readAhead": {"maxBytes": "1GiB"}}},
            {"ledger": {"keyPrefix": "timers:"}},
            {"ledger": {"sweepInterval": "5s"}},
            {"ledger": {"sweepGrace": "1s", "sweepInterval": "3s"}},
            {"ledger": {"sweepBatch": 2000}},
            {"ledger": {"claimTtl": "30s"}},
            {"ledger": {"rememberDelivered": "5m"}},
        ]
        for base_files, base_docs in (((), self.defaults), ((FULL,), self.full)):
            base = checksum(base_docs)
            _, base_text = bridge_config(base_docs)
            for ch in changes:
                docs, _ = render(*(base_files + (ch,)))
                self.assertEqual(checksum(docs), base, "%s must reach the pod by reload" % ch)
                cfg, text = bridge_config(docs)
                self.assertNotEqual(text, base_text, "%s reaches the file" % ch)
                section, vals = next(iter(ch.items()))
                got = cfg["redis"]["read_ahead"] if section == "redis" else cfg["ledger"]
                for k, v in (vals["readAhead"] if section == "redis" else vals).items():
                    self.assertEqual(got[snake(k)], v, "%s in the config" % ch)

    def test_ledger_sweep_grace_must_be_shorter_than_the_interval(self):
        for grace, interval in (("1s", "1s"), ("1000ms", "1s"), ("2s", "1s"), ("1m", "59s")):
            with self.assertRaises(RenderError, msg=(grace, interval)) as e:
                render({"ledger": {"sweepGrace": grace, "sweepInterval": interval}})
            self.assertIn("ledger.sweepGrace (%s) must be shorter than ledger.sweepInterval (%s)"
                          % (grace, interval), str(e.exception))
        for grace, interval in (("0s", "1ms"), ("999ms", "1s"), ("59s", "1m")):
            docs, _ = render({"ledger": {"sweepGrace": grace, "sweepInterval": interval}})
            self.assertEqual(bridge_config(docs)[0]["ledger"]["sweep_grace"], grace)

    def test_ledger_durations_beyond_the_bridges_32_bits_fail_to_render(self):
        for key in ("sweepInterval", "claimTtl", "rememberDelivered"):
            for value in ("597h", "35792m", "2147484s", "2147483648ms",
                          "99999999999ms"):
                with self.assertRaises(RenderError, msg=(key, value)) as e:
                    render({"ledger": {key: value}})
                self.assertIn("ledger.%s (%s) is too long" % (key, value), str(e.exception))
            docs, _ = render({"ledger": {key: "2147483647ms"}})
            self.assertEqual(bridge_config(docs)[0]["ledger"][snake(key)], "2147483647ms")

    def test_schema_and_bridge_agree_on_read_ahead_and_ledger_values(self):
        """What values.schema.json accepts, `expiry-bridge check` accepts
        (the boundaries), and every bad value file about these settings is
        refused by the bridge too: the schema is the loader's rules, moved
        to `helm install` time."""
        schema = load_yaml(os.path.join(CHART, "values.schema.json"))
        v = jsonschema.Draft7Validator(schema)
        edges = [
            {"redis": {"readAhead": {"maxEvents": 1, "maxBytes": "1B"}},
             "ledger": {"keyPrefix": "x", "sweepInterval": "1ms", "sweepGrace": "0s",
                        "sweepBatch": 1, "claimTtl": "1000ms", "rememberDelivered": "1ms"}},
            {"redis": {"readAhead": {"maxEvents": 4000000000, "maxBytes": "0016GiB"}},
             "ledger": {"sweepInterval": "596h", "sweepGrace": "595h", "sweepBatch": 10000,
                        "claimTtl": "1s", "rememberDelivered": "2147483647ms"}},
        ]
        ledgered = {"routes": [{"name": "orders", "match": "order:{id}", "topic": "t",
                                "ledger": "armed", "payload": "{key}:payload"}]}
        for i, edge in enumerate(edges):
            files = (edge, ledgered)
            errors = [e.message for e in v.iter_errors(merged_values(*files))]
            self.assertEqual(errors, [], edge)
            docs, _ = render(*files)
            _, text = bridge_config(docs)
            rc, out = bridge_check(text, "edge-%d" % i)
            self.assertEqual(rc, 0, "the bridge refused what the schema accepts:\n" + out)

        # Chart-only rules, not the loader's: key names (unknown keys), and
        # the empty keyPrefix (see its file).
        chart_only = {"readahead-unknown-key.yaml", "ledger-snake-case-key.yaml",
                      "ledger-key-prefix-empty.yaml"}
        cfg, _ = bridge_config(self.defaults)
        checked = 0
        for f in sorted(os.listdir(BAD_DIR)):
            if not f.startswith(("readahead-", "ledger-", "route-payload", "route-bad-ledger")):
                continue
            if f in chart_only:
                continue
            bad = load_yaml(os.path.join(BAD_DIR, f))
            c = copy.deepcopy(cfg)
            if "routes" in bad:
                c["routes"] = bad["routes"]
            for section in ("redis", "ledger"):
                node = bad.get(section, {})
                if section == "redis":
                    node = node.get("readAhead", {})
                dest = c["redis"]["read_ahead"] if section == "redis" else c["ledger"]
                for k, val in node.items():
                    dest[snake(k)] = val
            rc, out = bridge_check(yaml.safe_dump(c, sort_keys=False), f[:-5])
            self.assertEqual(rc, 78, "%s: the schema refuses it, the bridge took it:\n%s" % (f, out))
            checked += 1
        self.assertGreaterEqual(checked, 10)

    # ------------------------------------------------------------ consumer

    def test_consumer_runs_order_consumer_from_the_same_image(self):
        d = one(self.full, "Deployment", "consumer")
        c = container(d, "consumer")
        bridge = container(one(self.full, "Deployment", "bridge"), "bridge")
        self.assertEqual(c["image"], bridge["image"])
        self.assertEqual(c["image"], "registry.example.com/platform/expiry-bridge:0.1.0-rc1")
        self.assertEqual(c["command"], ["order-consumer"])
        self.assertEqual(c["args"], [
            "--brokers=kafka-0.kafka:9093,kafka-1.kafka:9093",
            "--group=order-consumer-shop",
            "--topic=shop.order.payment-timeout",
            "--db=host=shop-pg.db.svc dbname=shop user=shop sslmode=require",
            "-X", "fetch.max.bytes=52428800",
            "-X", "sasl.mechanisms=SCRAM-SHA-512",
            "-X", "sasl.password=$(KAFKA_PASSWORD)",
            "-X", "sasl.username=order-consumer",
            "-X", "security.protocol=SASL_SSL",
            "--verbose"])
        self.assertEqual(d["spec"]["replicas"], 2)
        self.assertEqual(pod_spec(d)["terminationGracePeriodSeconds"], 40)
        env = [e["name"] for e in c["env"]]
        self.assertEqual(env, ["PGPASSWORD", "KAFKA_PASSWORD"])
        # --migrate exits when done: an init container, never the main one.
        init = pod_spec(d)["initContainers"]
        self.assertEqual([i["name"] for i in init], ["migrate"])
        self.assertEqual(init[0]["command"], ["order-consumer"])
        self.assertEqual(init[0]["args"][0], "--migrate")
        self.assertEqual(init[0]["image"], c["image"])
        self.assertEqual(init[0]["env"], c["env"])
        self.assertEqual(init[0]["securityContext"], c["securityContext"])
        docs, _ = render(FULL, {"consumer": {"migrate": False, "extraEnv": [],
                                             "kafkaProperties": None, "password": ""}})
        d = one(docs, "Deployment", "consumer")
        self.assertNotIn("initContainers", pod_spec(d))
        self.assertNotIn("env", container(d, "consumer"))
        self.assertNotIn("-X", container(d, "consumer")["args"])

    def test_image_digest_pins_the_image(self):
        digest = "sha256:" + "ab" * 32
        docs, _ = render({"image": {"digest": digest}})
        self.assertEqual(container(one(docs, "Deployment"), "bridge")["image"],
                         "ghcr.io/expiry-bridge/expiry-bridge@" + digest)
        self.assertEqual(container(one(self.defaults, "Deployment"), "bridge")["image"],
                         "ghcr.io/expiry-bridge/expiry-bridge:0.1.0")

    def test_pdb_is_on_by_default_with_max_unavailable_one(self):
        spec = one(self.defaults, "PodDisruptionBudget")["spec"]
        self.assertEqual(spec, {"maxUnavailable": 1, "selector": {"matchLabels": one(
            self.defaults, "Deployment")["spec"]["selector"]["matchLabels"]}})
        self.assertEqual(one(self.full, "PodDisruptionBudget")["spec"]["minAvailable"], 1)
        self.assertNotIn("maxUnavailable", one(self.full, "PodDisruptionBudget")["spec"])
        docs, _ = render({"podDisruptionBudget": {"minAvailable": "50%"}})
        self.assertEqual(one(docs, "PodDisruptionBudget")["spec"]["minAvailable"], "50%")
        with open(os.path.join(CHART, "templates", "pdb.yaml")) as f:
            self.assertIn("maxUnavailable (rather\nthan minAvailable: 1)", f.read(),
                          "pdb.yaml says why maxUnavailable")

    # --------------------------------------------------------------- NOTES

    def test_notes_render_and_never_warn_that_replicas_duplicate(self):
        notes = notes_of()
        self.assertIn("shop-expiry-bridge", notes)
        self.assertIn("order-payment-timeout", notes)
        self.assertNotIn("WARNING", notes)
        for values in ((FULL,), (FULL, {"replicaCount": 2}), ({"replicaCount": 7},)):
            notes = notes_of(*values)
            self.assertNotIn("WARNING", notes, values)
            self.assertNotIn("times (deduplicate", notes, values)
        self.assertIn("existingSecret", notes_of(FULL))
        # The schema refuses a password in the URL; past it (skipped), the
        # template refuses it too, and NOTES never print one.
        for url in ("redis://u:pw@r:6379", "redis-sentinel://u:pw@s1:26379/m",
                    "rediss-cluster://u:pw@n1:6379"):
            with self.assertRaises(RenderError) as e:
                notes_of({"redis": {"url": url}})
            self.assertIn("at '/redis/url'", str(e.exception))
            with self.assertRaises(RenderError) as e:
                notes_of({"redis": {"url": url}}, skip_schema=True)
            self.assertIn("redis.url carries a password", str(e.exception))
            self.assertNotIn("pw", str(e.exception).replace("password", ""))

    def test_notes_explain_units_owners_standbys_and_readiness(self):
        notes = notes_of()
        for s in ("How the 2 replica(s) share the work",
                  "A unit is one Redis master's notifications plus the ledgers it holds",
                  "A standalone Redis is one unit: one replica works, the others stand by",
                  "exactly one owner at a time",
                  "group: expiry-bridge.shop-prod.shop-expiry-bridge",
                  "topic: expiry-bridge.units.shop-prod.shop-expiry-bridge",
                  "Replicas that own nothing are standbys",
                  "(at most coordination.handoverGrace, 5s): neither gap nor copy",
                  "PUBLISH and SUBSCRIBE on the\n    channel "
                  "__expiry_bridge:handover:expiry-bridge.shop-prod.shop-expiry-bridge",
                  "The units of a replica that dies move after coordination.sessionTimeout\n"
                  "    (6s): plain routes lose what expires in that window",
                  '/readyz (readiness) means "the units I own are subscribed, my handover\n'
                  '    marker came back on each, and Kafka is reachable", or "standby" when it\n'
                  '    owns none',
                  "eb_coordination_units_owned",
                  "Read on the group; Describe and Read on the topic; Create and Alter"):
            self.assertIn(s, notes)
        self.assertIn("Redis topology: standalone (one master).", notes)
        notes = notes_of(os.path.join(TOPOLOGIES, "cluster.yaml"))
        self.assertIn("How the 3 replica(s) share the work", notes)
        self.assertIn("This Cluster has one unit per master.", notes)
        self.assertIn("Redis topology: Cluster", notes)
        notes = notes_of(os.path.join(TOPOLOGIES, "sentinel.yaml"))
        self.assertIn("A Sentinel-managed Redis is one unit", notes)
        self.assertIn("Redis topology: Sentinel", notes)
        notes = notes_of({"replicaCount": 1, "coordination": {"enabled": False}})
        self.assertNotIn("share the work", notes)
        self.assertIn("One replica without coordination: it serves every unit itself", notes)

    def test_notes_name_ledgered_routes_and_what_redis_they_need(self):
        notes = notes_of()
        self.assertNotIn("@scripting", notes, "no ledgered route by default")
        self.assertIn("Only the environment (secret\nreferences, inline secrets, "
                      "extraEnv/extraEnvFrom), metrics.port,\nredis.tls.existingSecret and "
                      "coordination (with it, kafka connection\nsettings too) roll the pods.",
                      notes)
        notes = notes_of(FULL)
        self.assertIn("order-payment-timeout, cart-expired use the deadline ledger", notes)
        self.assertIn("(ledger: armed)", notes)
        self.assertIn("(ledger: observed)", notes)
        for s in ("Redis must be >= 7", "@scripting", "ACL user (bridge)",
                  '"{timers}:shop:{<route name>}"',
                  "exec deployment/eb-shop -- expiry-bridge functions load -c "
                  "/etc/expiry-bridge/config.yaml"):
            self.assertIn(s, notes)
        # A payload alone needs the library too (the bridge reads it with FCALL).
        notes = notes_of({"routes": [
            {"name": "carts", "match": "cart:{id}", "topic": "t", "payload": "{key}:p"}]})
        self.assertIn("route(s) carts use the deadline ledger", notes)

    # ---------------------------------------------------------- templates

    def test_helm_lint_strict_passes_on_defaults_and_full_values(self):
        """`helm lint --strict` (every template and NOTES.txt rendered, the
        values schema, the chart metadata; strict: a warning fails) passes.
        Measured with helm v4.3.2: --strict does not make a missing top-level
        value an error (`{{ .Values.nosuchkey }}` renders empty), so the next
        test checks every .Values path instead."""
        for which, files in (("defaults", ()), ("full", (FULL,))):
            rc, out = lint_strict(*files)
            self.assertEqual(rc, 0, "%s:\n%s" % (which, out))
            self.assertIn("1 chart(s) linted, 0 chart(s) failed", out, which)
            self.assertNotIn("[WARNING]", out, which)
            self.assertNotIn("[ERROR]", out, which)

    def test_every_values_reference_in_templates_exists(self):
        """missingkey=zero hides typos (.Values.redis.pasword renders empty):
        every .Values path a template reads must exist in values.yaml."""
        tdir = os.path.join(CHART, "templates")
        missing = []
        for name in sorted(os.listdir(tdir)):
            with open(os.path.join(tdir, name)) as f:
                text = f.read()
            aliases = dict(re.findall(r"\$(\w+)\s*:=\s*\.Values\.([\w.]+)", text))
            refs = re.findall(r"\.Values\.([\w.]+)", text)
            for alias, base in aliases.items():
                refs += [base + "." + r for r in re.findall(r"\$%s\.([\w.]+)" % alias, text)]
            for ref in refs:
                node = self.values
                for part in ref.split("."):
                    if not isinstance(node, dict) or part not in node:
                        missing.append("%s: .Values.%s" % (name, ref))
                        break
                    node = node[part]
        self.assertEqual(missing, [])

    # ---------------------------------------------------------------- schema

    def test_values_files_pass_the_schema(self):
        schema = load_yaml(os.path.join(CHART, "values.schema.json"))
        jsonschema.Draft7Validator.check_schema(schema)
        v = jsonschema.Draft7Validator(schema)
        for which, files in (("defaults", ()), ("full", (FULL,))):
            errors = ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
                      for e in v.iter_errors(merged_values(*files))]
            self.assertEqual(errors, [], which)

    def test_schema_rejects_bad_values(self):
        """Each tests/helm/bad-values/*.yaml names, on its first line
        (`# expect: PATH`), where the schema must report the error. helm
        itself refuses it (template and lint --strict) through
        values.schema.json, naming PATH; jsonschema on the same coalesced
        values reports PATH too. helm v4.3.2 names a wrong, changing location
        for a propertyNames error (e.g. "at '/strategy/type/maxUnavailable':
        invalid propertyName 'ce_source'" for a route header): there the
        message must name the refused property instead."""
        schema = load_yaml(os.path.join(CHART, "values.schema.json"))
        v = jsonschema.Draft7Validator(schema)
        files = sorted(f for f in os.listdir(BAD_DIR) if f.endswith(".yaml"))
        self.assertGreaterEqual(len(files), 8)
        for f in files:
            path = os.path.join(BAD_DIR, f)
            with open(path) as fh:
                m = re.match(r"# expect: (\S*)", fh.readline())
            self.assertTrue(m, "%s: first line must be '# expect: PATH'" % f)
            expect = m.group(1)
            errors = list(v.iter_errors(merged_values(path)))
            self.assertTrue(errors, "%s: jsonschema accepted a bad values file" % f)
            paths = {"/".join(map(str, e.absolute_path)) for e in errors}
            self.assertIn(expect, paths, "%s: errors at %s" % (f, paths))

            with self.assertRaises(RenderError, msg="helm template accepted %s" % f) as e:
                render(path)
            msg = str(e.exception)
            self.assertIn("values don't meet the specifications of the schema", msg, f)
            names = [x.instance for x in errors if "propertyNames" in x.schema_path]
            if names:
                self.assertIn("invalid propertyName '%s'" % names[0], msg, f)
            else:
                self.assertIn("- at '%s%s'" % ("/" if expect else "", expect), msg, f)
            rc, out = lint_strict(path)
            self.assertNotEqual(rc, 0, "helm lint --strict accepted %s" % f)
            self.assertIn("values don't meet the specifications of the schema", out, f)
            self.checked_bad = getattr(self, "checked_bad", 0) + 1
        print("bad values refused by helm: %d of %d files" % (self.checked_bad, len(files)))

    # ---------------------------------------------------------------- README

    def test_readme_lists_every_value_with_its_default_and_type(self):
        with open(os.path.join(CHART, "README.md")) as f:
            readme = f.read()
        rows = {}
        for m in re.finditer(r"^\| `([^`]+)` \| ([\w/]+) \| (.*?) \| (.+?) \|$", readme, re.M):
            rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
        schema = load_yaml(os.path.join(CHART, "values.schema.json"))
        leaves = dict(value_leaves(self.values))
        self.assertEqual(sorted(set(leaves) - set(rows)), [], "values missing from README.md")
        self.assertEqual(sorted(set(rows) - set(leaves)), [],
                         "README.md documents values that do not exist")
        for key, value in leaves.items():
            typ, default, _ = rows[key]
            self.assertEqual(typ, schema_type(schema, key, value), "README type of %s" % key)
            self.assertEqual(default.strip("`"), json.dumps(value, separators=(",", ":")),
                             "README default of %s" % key)


def bridge_env(deploy):
    """The bridge container's env as {name: entry}."""
    return {e["name"]: e for e in container(deploy, "bridge").get("env", [])}


def volumes(deploy):
    return {v["name"]: v for v in pod_spec(deploy).get("volumes", [])}


def mounts(deploy):
    return {m["name"]: m for m in container(deploy, "bridge")["volumeMounts"]}


def topology(name):
    return os.path.join(TOPOLOGIES, name + ".yaml")


class TopologyTest(Counted):
    """Standalone, Sentinel and Cluster (tests/helm/topologies/): the URL
    names the topology; the settings of one topology given with another fail
    to render, naming both, instead of reaching a pod whose bridge refuses
    them. Every render here also passes `expiry-bridge check` (render())."""

    def test_each_topology_file_renders_its_url_and_lints(self):
        want = {
            "standalone": "redis://shop-redis-master.shop-prod.svc:6379",
            "sentinel": "redis-sentinel://redis-node-0.redis-headless:26379,"
                        "redis-node-1.redis-headless:26379,redis-node-2.redis-headless:26379/mymaster",
            "cluster": "redis-cluster://redis-cluster-0.redis-cluster-headless:6379,"
                       "redis-cluster-1.redis-cluster-headless:6379,"
                       "redis-cluster-2.redis-cluster-headless:6379",
            "standalone-tls": "rediss://redis-master.shop.svc:6380",
            "sentinel-tls": "rediss-sentinel://redis-node-0.redis-headless:26379,"
                            "redis-node-1.redis-headless:26379/mymaster",
            "cluster-tls": "rediss-cluster://bridge@clustercfg.shop-redis.example.cache."
                           "amazonaws.com:6379",
        }
        files = sorted(f[:-5] for f in os.listdir(TOPOLOGIES) if f.endswith(".yaml"))
        self.assertEqual(files, sorted(want))
        for name, url in want.items():
            docs, _ = render(topology(name))
            cfg, _ = bridge_config(docs)
            self.assertEqual(cfg["redis"]["url"], url, name)
            self.assertEqual(cfg["redis"]["password"], "${REDIS_PASSWORD}", name)
            self.assertIs(cfg["coordination"]["enabled"], True, name)
            self.assertEqual("tls" in cfg["redis"], name.endswith("-tls"), name)
            rc, out = lint_strict(topology(name))
            self.assertEqual(rc, 0, "%s:\n%s" % (name, out))

    def test_sentinel_password_reaches_the_bridge_from_a_secret_only(self):
        docs, _ = render(topology("sentinel"))
        cfg, text = bridge_config(docs)
        self.assertEqual(cfg["redis"]["sentinel"], {"password": "${SENTINEL_PASSWORD}"})
        self.assertEqual(cfg["redis"]["topology_interval"], "500ms")
        env = bridge_env(one(docs, "Deployment"))
        self.assertEqual(env["SENTINEL_PASSWORD"]["valueFrom"]["secretKeyRef"],
                         {"name": "redis", "key": "redis-password"})
        self.assertEqual(env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"],
                         {"name": "redis", "key": "redis-password"})
        self.assertEqual(find(docs, "Secret"), [])
        # Inline: the chart's Secret holds it under sentinel-password, and
        # nothing else does.
        docs, _ = render(topology("sentinel-tls"))
        cfg, _ = bridge_config(docs)
        self.assertEqual(cfg["redis"]["sentinel"], {"username": "sentinel-reader",
                                                    "password": "${SENTINEL_PASSWORD}"})
        env = bridge_env(one(docs, "Deployment"))
        self.assertEqual(env["SENTINEL_PASSWORD"]["valueFrom"]["secretKeyRef"],
                         {"name": "shop-expiry-bridge", "key": "sentinel-password"})
        import base64
        secret = one(docs, "Secret")
        self.assertEqual({k: base64.b64decode(v).decode() for k, v in secret["data"].items()},
                         {"sentinel-password": "inline-sentinel-secret"})
        for d in docs:
            if d["kind"] != "Secret":
                self.assertNotIn("inline-sentinel-secret", json.dumps(d), d["kind"])
        # A user alone is rendered without a password.
        docs, _ = render(topology("sentinel"), {"redis": {"sentinel": {
            "existingSecret": "", "username": "watcher"}}})
        self.assertEqual(bridge_config(docs)[0]["redis"]["sentinel"], {"username": "watcher"})
        self.assertNotIn("SENTINEL_PASSWORD", bridge_env(one(docs, "Deployment")))

    def test_no_sentinel_section_without_sentinel_credentials(self):
        docs, _ = render({"redis": {"url": "redis-sentinel://s1:26379,s2:26379/mymaster"}})
        cfg, _ = bridge_config(docs)
        self.assertNotIn("sentinel", cfg["redis"])
        self.assertNotIn("env", container(one(docs, "Deployment"), "bridge"))

    def test_cluster_takes_database_zero_only(self):
        docs, _ = render(topology("cluster"))
        self.assertEqual(bridge_config(docs)[0]["redis"]["databases"], [0])
        self.assertEqual(one(docs, "Deployment")["spec"]["replicas"], 3)
        docs, _ = render(topology("cluster"), {"redis": {"databases": "all"}})
        self.assertNotIn("databases", bridge_config(docs)[0]["redis"])
        for dbs in ([0, 3], [1]):
            with self.assertRaises(RenderError, msg=dbs) as e:
                render(topology("cluster"), {"redis": {"databases": dbs}})
            self.assertIn("redis.databases is %s, but Redis Cluster has only database 0"
                          % json.dumps(dbs, separators=(",", ":")), str(e.exception))

    def test_a_url_that_selects_a_database_renders_without_databases(self):
        for url in ("redis://h:6379/2", "redis-sentinel://s1:26379,s2/mymaster/3"):
            docs, _ = render({"redis": {"url": url}})
            cfg, _ = bridge_config(docs)
            self.assertEqual(cfg["redis"]["url"], url)
            self.assertNotIn("databases", cfg["redis"], url)
            with self.assertRaises(RenderError, msg=url) as e:
                render({"redis": {"url": url, "databases": [0]}})
            self.assertIn("redis.url selects one database and redis.databases lists [0]",
                          str(e.exception))
        docs, _ = render({"redis": {"url": "redis://h:6379", "databases": [0, 3]}})
        self.assertEqual(bridge_config(docs)[0]["redis"]["databases"], [0, 3])

    def test_settings_of_another_topology_fail_to_render_naming_both(self):
        cases = [
            ({"redis": {"sentinel": {"existingSecret": "s"}}},
             "redis.sentinel is for redis-sentinel:// URLs (the sentinels' own credentials); "
             "redis.url is a redis:// URL"),
            ({"redis": {"url": "redis-cluster://n1:6379", "sentinel": {"username": "u"}}},
             "redis.url is a redis-cluster:// URL"),
            ({"redis": {"url": "rediss://h:6380", "sentinel": {"password": "p"}}},
             "redis.url is a rediss:// URL"),
            ({"redis": {"tls": {"existingSecret": "ca"}}},
             "redis.tls.existingSecret needs a TLS URL (rediss://, rediss-sentinel:// or "
             "rediss-cluster://); redis.url is a redis:// URL"),
            ({"redis": {"url": "redis-sentinel://s/m", "tls": {"serverName": "r"}}},
             "redis.tls.serverName needs a TLS URL"),
            ({"redis": {"url": "redis-cluster://n", "tls": {"insecureSkipVerify": True}}},
             "redis.tls.insecureSkipVerify needs a TLS URL"),
            ({"redis": {"url": "{{ print \"memcached://m:11211\" }}"}},
             "redis.url (memcached://m:11211) must start with redis:// (standalone), "
             "redis-sentinel:// (Sentinel) or redis-cluster:// (Cluster)"),
            ({"redis": {"url": "{{ print \"redis://u:\" \"pw@r:6379\" }}"}},
             "redis.url carries a password"),
        ]
        for values, msg in cases:
            with self.assertRaises(RenderError, msg=str(values)) as e:
                render(values)
            self.assertIn(msg, str(e.exception))

    def test_schema_and_bridge_agree_on_urls(self):
        """The URL files of bad-values/ that the bridge refuses too, and the
        one only the chart refuses (a password would land in the ConfigMap)."""
        cfg, _ = bridge_config(render()[0])
        for f, bridge_refuses in (("sentinel-url-without-master.yaml", True),
                                  ("redis-url-unknown-scheme.yaml", True),
                                  ("password-in-sentinel-url.yaml", False),
                                  ("topology-interval-zero.yaml", True)):
            c = copy.deepcopy(cfg)
            for k, v in load_yaml(os.path.join(BAD_DIR, f))["redis"].items():
                c["redis"][snake(k)] = v
            if c["redis"]["url"].startswith("rediss") and TLS_UNAVAILABLE:
                c["redis"]["url"] = c["redis"]["url"].replace("rediss", "redis", 1)
            rc, out = bridge_check(yaml.safe_dump(c, sort_keys=False), f[:-5])
            self.assertEqual(rc, 78 if bridge_refuses else 0, "%s:\n%s" % (f, out))
        # Every topology file passes the schema (jsonschema, as helm does).
        schema = load_yaml(os.path.join(CHART, "values.schema.json"))
        v = jsonschema.Draft7Validator(schema)
        for f in sorted(os.listdir(TOPOLOGIES)):
            errors = [e.message for e in v.iter_errors(merged_values(os.path.join(TOPOLOGIES, f)))]
            self.assertEqual(errors, [], f)

    def test_source_keeps_naming_the_deployment_for_every_topology(self):
        for name in ("sentinel", "cluster"):
            docs, _ = render(topology(name), {"redis": {"source": "redis://shop-cache"}})
            self.assertEqual(bridge_config(docs)[0]["redis"]["source"], "redis://shop-cache")


class HighAvailabilityTest(Counted):
    """Several replicas (DESIGN §5): coordination whenever replicaCount > 1,
    a PodDisruptionBudget, anti-affinity across nodes, a grace period that
    covers handover and drain."""

    @classmethod
    def setUpClass(cls):
        cls.defaults, _ = render()
        cls.full, _ = render(FULL)

    def test_replicas_above_one_without_coordination_fail_to_render_with_the_reason(self):
        for n in (2, 3):
            with self.assertRaises(RenderError) as e:
                render({"replicaCount": n, "coordination": {"enabled": False}})
            self.assertIn("replicaCount is %d but coordination.enabled is false: without the "
                          "coordination group every replica reads every notification and "
                          "forwards it, so each event would be produced %d times" % (n, n),
                          str(e.exception))
            # helm v4.3.2's lint only logs a template's `fail` (INFO "funcMap
            # fail") and passes: `helm template`/`install` are what refuse.
            rc, out = lint_strict({"replicaCount": n, "coordination": {"enabled": False}})
            self.assertIn("replicaCount is %d but coordination.enabled is false" % n, out)

    def test_one_replica_may_run_without_coordination(self):
        for n in (0, 1):
            docs, _ = render({"replicaCount": n, "coordination": {"enabled": False}})
            self.assertEqual(one(docs, "Deployment")["spec"]["replicas"], n)
            self.assertNotIn("coordination", bridge_config(docs)[0])
        # ... and with it, so that scaling up later needs no config change.
        docs, _ = render({"replicaCount": 1})
        self.assertIs(bridge_config(docs)[0]["coordination"]["enabled"], True)

    def test_replica_count_scales_with_the_same_config(self):
        base = bridge_config(self.defaults)[1]
        for n in (1, 3, 10):
            docs, _ = render({"replicaCount": n})
            self.assertEqual(one(docs, "Deployment")["spec"]["replicas"], n)
            self.assertEqual(bridge_config(docs)[1], base, "replicas do not change the config")

    def test_coordination_group_and_topic_are_named_after_the_release(self):
        names = set()
        for release, ns in (("shop", "shop-prod"), ("shop", "shop-staging"), ("eu", "shop-prod")):
            docs, _ = render(release=release, namespace=ns)
            co = bridge_config(docs)[0]["coordination"]
            self.assertTrue(co["group"].startswith("expiry-bridge.%s." % ns), co)
            self.assertRegex(co["topic"], r"^[a-zA-Z0-9._-]{1,249}$")
            names.add((co["group"], co["topic"]))
        self.assertEqual(len(names), 3, "two releases never share a group or a topic")
        # The longest names helm allows still make a valid topic.
        docs, _ = render(release="r" * 53, namespace="n" * 63)
        self.assertRegex(bridge_config(docs)[0]["coordination"]["topic"],
                         r"^[a-zA-Z0-9._-]{1,249}$")

    def test_coordination_session_timeout_covers_three_heartbeats(self):
        for session, heartbeat in (("2999ms", "1s"), ("5s", "2s"), ("1s", "1s")):
            with self.assertRaises(RenderError, msg=(session, heartbeat)) as e:
                render({"coordination": {"sessionTimeout": session,
                                         "heartbeatInterval": heartbeat}})
            self.assertIn("coordination.sessionTimeout (%s) must be at least three "
                          "coordination.heartbeatInterval (%s)" % (session, heartbeat),
                          str(e.exception))
        # The edge the bridge accepts (render() runs `expiry-bridge check`).
        for session, heartbeat in (("3s", "1s"), ("6s", "2s"), ("1m", "20s")):
            docs, _ = render({"coordination": {"sessionTimeout": session,
                                               "heartbeatInterval": heartbeat}})
            co = bridge_config(docs)[0]["coordination"]
            self.assertEqual((co["session_timeout"], co["heartbeat_interval"]),
                             (session, heartbeat))

    def test_coordination_session_timeout_edge_is_the_bridges(self):
        """The template's rule is the loader's: what it refuses, check refuses."""
        cfg, _ = bridge_config(self.defaults)
        cfg["coordination"].update(session_timeout="2999ms", heartbeat_interval="1s")
        rc, out = bridge_check(yaml.safe_dump(cfg, sort_keys=False), "session-edge")
        self.assertEqual(rc, 78, out)
        self.assertIn("invalid coordination.session_timeout", out)

    def test_schema_and_bridge_agree_on_coordination_values(self):
        """Each bad-values/coordination-*.yaml the schema refuses, the
        bridge refuses too (the schema moves the loader's rules to install
        time); and the defaults pass both."""
        cfg, _ = bridge_config(self.defaults)
        checked = 0
        for f in sorted(os.listdir(BAD_DIR)):
            if not f.startswith("coordination-"):
                continue
            c = copy.deepcopy(cfg)
            for k, v in load_yaml(os.path.join(BAD_DIR, f))["coordination"].items():
                c["coordination"][snake(k)] = v
            rc, out = bridge_check(yaml.safe_dump(c, sort_keys=False), f[:-5])
            self.assertEqual(rc, 78, "%s: the schema refuses it, the bridge took it:\n%s" % (f, out))
            checked += 1
        self.assertEqual(checked, 4)

    def test_anti_affinity_prefers_other_nodes_by_default(self):
        aff = pod_spec(one(self.defaults, "Deployment"))["affinity"]
        sel = one(self.defaults, "Deployment")["spec"]["selector"]["matchLabels"]
        self.assertEqual(aff, {"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{
                "weight": 100, "podAffinityTerm": {
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": sel}}}]}})

    def test_anti_affinity_hard_requires_other_places_and_keeps_other_affinity(self):
        aff = pod_spec(one(self.full, "Deployment", "bridge"))["affinity"]
        sel = one(self.full, "Deployment", "bridge")["spec"]["selector"]["matchLabels"]
        self.assertEqual(aff["podAntiAffinity"], {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "topologyKey": "topology.kubernetes.io/zone",
                "labelSelector": {"matchLabels": sel}}]})
        self.assertEqual(aff["nodeAffinity"], self_full_values()["affinity"]["nodeAffinity"])
        # The consumer's pods are not the bridge's: it never selects them.
        consumer = one(self.full, "Deployment", "consumer")
        self.assertFalse(sel.items() <= consumer["spec"]["template"]["metadata"]["labels"].items())

    def test_anti_affinity_none_or_your_own(self):
        docs, _ = render({"podAntiAffinity": {"type": "none"}})
        self.assertNotIn("affinity", pod_spec(one(docs, "Deployment")))
        own = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 1, "podAffinityTerm": {"topologyKey": "rack",
                                             "labelSelector": {"matchLabels": {"team": "shop"}}}}]}}
        docs, _ = render({"affinity": own})
        self.assertEqual(pod_spec(one(docs, "Deployment"))["affinity"], own)
        # The values object itself is not changed by the merge (a second
        # render of the same values gives the same result).
        docs2, _ = render({"affinity": own})
        self.assertEqual(pod_spec(one(docs2, "Deployment"))["affinity"], own)

    def test_rolling_update_never_takes_a_ready_replica_down_first(self):
        s = one(self.defaults, "Deployment")["spec"]["strategy"]
        self.assertEqual(s["rollingUpdate"], {"maxSurge": 1, "maxUnavailable": 0})


class RedisTlsTest(Counted):
    """TLS to Redis: rediss... URLs, certificates from a Secret mounted as a
    directory, file paths in the config, nothing secret in the ConfigMap."""

    def test_certificates_come_from_the_secret_mounted_as_a_directory(self):
        docs, _ = render(topology("sentinel-tls"))
        d = one(docs, "Deployment")
        vol = volumes(d)["redis-tls"]
        self.assertEqual(vol, {"secret": {
            "secretName": "expiry-bridge-redis-client", "defaultMode": 0o440,
            "items": [{"key": "ca.crt", "path": "ca.crt"}, {"key": "tls.crt", "path": "tls.crt"},
                      {"key": "tls.key", "path": "tls.key"}]}, "name": "redis-tls"})
        m = mounts(d)["redis-tls"]
        self.assertEqual(m, {"name": "redis-tls", "mountPath": "/etc/expiry-bridge-tls/redis",
                             "readOnly": True})
        cfg, _ = bridge_config(docs)
        self.assertEqual(cfg["redis"]["tls"], {
            "ca_file": "/etc/expiry-bridge-tls/redis/ca.crt",
            "cert_file": "/etc/expiry-bridge-tls/redis/tls.crt",
            "key_file": "/etc/expiry-bridge-tls/redis/tls.key",
            "server_name": "redis.shop.svc.cluster.local",
            "insecure_skip_verify": False})
        # Every file the config names is inside the mount, under a projected item.
        paths = {m["mountPath"] + "/" + i["path"] for i in vol["secret"]["items"]}
        for key in ("ca_file", "cert_file", "key_file"):
            self.assertIn(cfg["redis"]["tls"][key], paths)
        # The config mount stays untouched beside it (no mount inside it).
        self.assertFalse(m["mountPath"].startswith(mounts(d)["config"]["mountPath"] + "/"))

    def test_key_names_of_the_secret_are_yours_the_files_are_fixed(self):
        docs, _ = render({"redis": {"url": "rediss://r:6380", "tls": {
            "existingSecret": "mine", "caKey": "root.pem", "certKey": "client.pem",
            "keyKey": "client-key.pem"}}})
        items = volumes(one(docs, "Deployment"))["redis-tls"]["secret"]["items"]
        self.assertEqual(items, [{"key": "root.pem", "path": "ca.crt"},
                                 {"key": "client.pem", "path": "tls.crt"},
                                 {"key": "client-key.pem", "path": "tls.key"}])

    def test_ca_only_and_system_trust_store(self):
        docs, _ = render(topology("standalone-tls"))
        cfg, _ = bridge_config(docs)
        self.assertEqual(cfg["redis"]["tls"], {"ca_file": "/etc/expiry-bridge-tls/redis/ca.crt",
                                               "insecure_skip_verify": False})
        self.assertEqual(volumes(one(docs, "Deployment"))["redis-tls"]["secret"]["items"],
                         [{"key": "ca.crt", "path": "ca.crt"}])
        docs, _ = render(topology("cluster-tls"))
        cfg, _ = bridge_config(docs)
        self.assertEqual(cfg["redis"]["tls"], {"insecure_skip_verify": False})
        self.assertNotIn("redis-tls", volumes(one(docs, "Deployment")))
        self.assertNotIn("redis-tls", mounts(one(docs, "Deployment")))
        # Client certificate with the system's CAs.
        docs, _ = render({"redis": {"url": "rediss://r", "tls": {
            "existingSecret": "c", "caKey": "", "certKey": "tls.crt", "keyKey": "tls.key"}}})
        self.assertNotIn("ca_file", bridge_config(docs)[0]["redis"]["tls"])

    def test_no_tls_volume_without_a_tls_url(self):
        for docs in (render()[0], render(topology("sentinel"))[0]):
            self.assertNotIn("redis-tls", volumes(one(docs, "Deployment")))
            self.assertNotIn("tls", bridge_config(docs)[0]["redis"])

    def test_incomplete_tls_settings_fail_to_render(self):
        url = {"url": "rediss://r:6380"}
        cases = [
            ({"tls": {"existingSecret": "c", "certKey": "tls.crt"}},
             "redis.tls: set both certKey and keyKey"),
            ({"tls": {"existingSecret": "c", "keyKey": "tls.key"}},
             "redis.tls: set both certKey and keyKey"),
            ({"tls": {"certKey": "tls.crt", "keyKey": "tls.key"}},
             "redis.tls.certKey and keyKey name keys of redis.tls.existingSecret, which is empty"),
            ({"tls": {"existingSecret": "c", "caKey": ""}},
             "redis.tls.existingSecret is set but neither caKey nor certKey/keyKey"),
        ]
        for values, msg in cases:
            with self.assertRaises(RenderError, msg=str(values)) as e:
                render({"redis": dict(url, **values)})
            self.assertIn(msg, str(e.exception))

    def test_insecure_skip_verify_reaches_the_config_and_warns_in_notes(self):
        values = {"redis": {"url": "rediss://r:6380", "tls": {"insecureSkipVerify": True}}}
        docs, _ = render(values)
        self.assertIs(bridge_config(docs)[0]["redis"]["tls"]["insecure_skip_verify"], True)
        notes = notes_of(values)
        self.assertIn("WARNING: redis.tls.insecureSkipVerify is true", notes)
        self.assertIn("Redis topology: standalone (one master), over TLS.", notes)
        self.assertNotIn("WARNING", notes_of(topology("standalone-tls")))

    def test_tls_secret_changes_roll_the_pod_spec_but_not_the_config_checksum(self):
        a, _ = render(topology("standalone-tls"))
        b, _ = render(topology("standalone-tls"), {"redis": {"tls": {"existingSecret": "ca2"}}})
        self.assertNotEqual(volumes(one(a, "Deployment"))["redis-tls"],
                            volumes(one(b, "Deployment"))["redis-tls"])
        self.assertEqual(bridge_config(a)[1], bridge_config(b)[1])

    def test_bridge_accepts_tls_configs_or_refuses_them_only_for_its_build(self):
        """render() ran `expiry-bridge check` on every TLS config above: with
        a TLS build each passed; without, each was refused with exactly the
        build's message and passed without TLS. Here the probe itself."""
        if TLS_UNAVAILABLE:
            self.assertRegex(TLS_UNAVAILABLE, r"^TLS to Redis needs hiredis >= 1\.0 .*hiredis "
                                              r"\d+\.\d+\.\d+ without it$")
        docs, _ = render(topology("sentinel-tls"))
        self.assertIn(CHECKED.get(bridge_config(docs)[1]), ("ok", "tls"))


def self_full_values():
    return load_yaml(FULL)


def snake(name):
    """The bridge's spelling of a chart key: claimTtl -> claim_ttl."""
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def bridge_check(text, name):
    """`expiry-bridge check` on a config text: (exit status, output)."""
    eb = os.environ.get("EB_BIN")
    if not (eb and os.access(eb, os.X_OK)):
        raise AssertionError("EB_BIN must name the expiry-bridge binary (ctest sets it)")
    path = os.path.join(_tmpdir, "config-%s.yaml" % name)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([eb, "check", "-c", path], capture_output=True, text=True,
                       env=eb_env(), timeout=30)
    return p.returncode, p.stdout + p.stderr


def eb_env():
    """The environment the Deployment gives the bridge (from Secrets)."""
    return dict(os.environ, REDIS_PASSWORD="from-secret", SENTINEL_PASSWORD="from-secret",
                KAFKA_SASL_PASSWORD="from-secret")


def value_leaves(node, prefix=""):
    """Dotted paths of values.yaml leaves: scalars, lists and empty maps.
    Free-form maps (resources, securityContext, kafka.client...) are leaves
    too: they are documented as a whole."""
    FREEFORM = {"resources", "podSecurityContext", "securityContext", "kafka.client",
                "consumer.resources", "strategy"}
    for k, v in node.items():
        path = prefix + k
        if isinstance(v, dict) and v and path not in FREEFORM:
            yield from value_leaves(v, path + ".")
        else:
            yield path, v


def schema_type(schema, dotted, value):
    node = schema
    for part in dotted.split("."):
        node = node["properties"][part]
    t = node.get("type")
    if t is None and "oneOf" in node:
        t = "/".join(sorted({x["type"] for x in node["oneOf"]}))
    if isinstance(t, list):
        t = "/".join(t)
    return t


def main():
    global _tmpdir, HELM
    HELM = ebcache.helm()
    if not HELM or not os.access(HELM, os.X_OK):
        ebcache.missing("helm.chart", "helm %s" % ebcache.versions()["HELM_VERSION"],
                        "scripts/fetch-helm.sh")
    global TLS_UNAVAILABLE
    t0 = time.monotonic()
    _tmpdir = tempfile.mkdtemp(prefix="eb-helm-")
    try:
        TLS_UNAVAILABLE = probe_tls()
        prog = unittest.main(exit=False, argv=sys.argv)
        result = prog.result
    finally:
        shutil.rmtree(_tmpdir, ignore_errors=True)
    tls = sum(1 for v in CHECKED.values() if v == "tls")
    print("expiry-bridge check accepted all %d distinct configs the tests rendered%s" % (
        len(CHECKED), "" if not tls else
        " (%d over TLS: this build has none, so each was refused for that alone and "
        "accepted without TLS)" % tls))
    print("helm.chart: %s; %d tests, %d assertions, %.1f s" % (
        subprocess.run([HELM, "version", "--short"], capture_output=True,
                       text=True).stdout.strip(),
        result.testsRun, assertions(), time.monotonic() - t0))
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
