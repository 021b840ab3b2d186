#!/usr/bin/python3
"""helm.packaging -- the container image cannot drift from what CI tested.

No Docker engine or hadolint exists on these machines, so this checks the
Dockerfile as text, and checks it against what is real here:

- the package lists, one pair per Debian release the project builds on
  (.ci/packages-{build,runtime}.txt: Debian 12, this CI machine;
  .ci/debian13/packages-*.txt: Debian 13, scripts/debian13.sh's root and the
  image), are plain lists (one Debian package a line: `xargs apt-get
  install < FILE` reads them), and CI's entry point (.ci/run and the scripts
  it runs) installs from each build list;
- on the machine this runs on (Debian 12 or 13), with that release's lists:
  every name exists in its Debian, every pkg-config module CMake asks for
  is provided by a package in the build list (dpkg -S of its .pc file), and
  every shared library the installed binaries link directly (cmake
  --install of this build tree, readelf NEEDED) is provided by a package in
  the runtime list or by libc6, so an image of that release has it;
- `cmake --install --prefix D` installs the bridge and every file it ships
  (the example and demo configs, the config's and the event's JSON Schemas,
  the Redis Function library), byte for byte;
- the Dockerfile: Debian 13 slim in every stage, apt-get only from the
  Debian 13 lists
  files (the same command line in both stages), unit tests run in the build
  stage, cmake --install into a staging root and nothing copied from the
  source tree by hand, a non-root numeric USER, the plugins folder,
  ENTRYPOINT/CMD matching the Helm chart's config path and port, COPY
  sources that exist and are not dockerignored;
- .github/workflows/ci.yml runs .ci/run on debian:12 (with Go >= 1.26 for
  helm and Node.js >= 20 for the JavaScript SDK), and helm lint and helm
  template with tests/helm/values-full.yaml on the helm that
  scripts/fetch-helm.sh builds; scripts/test.sh fetches before it tests.

Environment: EB_SOURCE_DIR, EB_BUILD_DIR (set by ctest).
"""
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

from counted import Counted, assertions

SRC = os.environ.get("EB_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("EB_BUILD_DIR") or os.path.join(SRC, "build")
# (build list, runtime list) per Debian release.
LISTS = {"12": (".ci/packages-build.txt", ".ci/packages-runtime.txt"),
         "13": (".ci/debian13/packages-build.txt", ".ci/debian13/packages-runtime.txt")}
# The image's release: the Dockerfile installs its lists.
BASE_IMAGE = "debian:13-slim"
PKG_BUILD, PKG_RUNTIME = LISTS["13"]
APT_LINE = "xargs apt-get install -y --no-install-recommends < %s"


def host_release():
    """The Debian major release this runs on ("12", "13"), from /etc/debian_version."""
    try:
        with open("/etc/debian_version") as f:
            return f.read().strip().split(".")[0]
    except OSError:
        return None


# The lists of the machine this runs on (checked against its apt and dpkg).
HOST_BUILD, HOST_RUNTIME = LISTS.get(host_release(), LISTS["12"])
# Libraries every Debian image has (the C library and the GCC runtime).
BASE_PACKAGES = {"libc6", "libgcc-s1"}

def read(rel):
    with open(os.path.join(SRC, rel)) as f:
        return f.read()


def package_list(rel):
    return read(rel).split("\n")[:-1]


# ----------------------------------------------------------- Dockerfile

def dockerfile_instructions(text):
    """[(stage_index, INSTRUCTION, argument)] with continuations joined and
    comments dropped; stage_index counts FROM lines from 0 (-1 before)."""
    out, stage, buf = [], -1, ""
    for line in text.split("\n"):
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        instr, _, arg = buf.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, arg.strip()))
        buf = ""
    return out


def dockerignored(rel, patterns):
    ignored = False
    for p in patterns:
        neg = p.startswith("!")
        p = p.lstrip("!").rstrip("/")
        parts = rel.split("/")
        hit = any(fnmatch.fnmatch("/".join(parts[:i]), p) for i in range(1, len(parts) + 1))
        if p.startswith("**/"):
            hit = hit or any(fnmatch.fnmatch(x, p[3:]) for x in parts)
        if hit:
            ignored = not neg
    return ignored


class PackageListsTest(Counted):
    def test_package_lists_are_one_plain_name_a_line(self):
        for rel in [r for pair in LISTS.values() for r in pair]:
            text = read(rel)
            self.assertTrue(text.endswith("\n"), rel)
            names = package_list(rel)
            self.assertTrue(names, rel)
            for n in names:
                # xargs would pass a comment or a blank to apt-get as words.
                self.assertRegex(n, r"^[a-z0-9][a-z0-9+.-]+$",
                                 "%s: %r is not a bare package name" % (rel, n))
            self.assertEqual(len(names), len(set(names)), "%s has duplicates" % rel)

    def test_package_lists_hold_what_the_design_asks(self):
        for rel_build, rel_runtime in LISTS.values():
            build = set(package_list(rel_build))
            for p in ("build-essential", "cmake", "pkg-config", "libhiredis-dev",
                      "librdkafka-dev", "libyaml-dev", "libevent-dev", "libcmocka-dev",
                      "libpq-dev"):
                self.assertIn(p, build, rel_build)
            runtime = set(package_list(rel_runtime))
            self.assertIn("ca-certificates", runtime, "Kafka over TLS needs the CA bundle")
            self.assertFalse({p for p in runtime if p.endswith("-dev")},
                             "no -dev in the runtime image")

    def test_every_package_exists_in_debian(self):
        if not shutil.which("apt-cache"):
            self.skipTest("no apt-cache here")
        names = package_list(HOST_BUILD) + package_list(HOST_RUNTIME)
        p = subprocess.run(["apt-cache", "policy"] + names, capture_output=True, text=True)
        blocks = re.split(r"^(?=\S)", p.stdout, flags=re.M)
        cand = {}
        for b in blocks:
            m = re.match(r"^(\S+):\n(?:.*\n)*?\s+Candidate: (\S+)", b)
            if m:
                cand[m.group(1)] = m.group(2)
        if not cand or all(v == "(none)" for v in cand.values()):
            self.skipTest("apt lists are empty here (run apt-get update)")
        for n in names:
            self.assertIn(n, cand, "apt-cache does not know %s" % n)
            self.assertNotEqual(cand[n], "(none)", "%s has no installation candidate" % n)

    def test_ci_installs_from_the_build_package_list(self):
        if not os.path.exists(os.path.join(SRC, ".ci", "run")):
            self.skipTest(".ci/run does not exist yet")
        # Follow .ci/run into the repository scripts it names.
        seen, todo, found = set(), [".ci/run"], {}
        while todo:
            rel = todo.pop()
            if rel in seen or not os.path.isfile(os.path.join(SRC, rel)):
                continue
            seen.add(rel)
            text = read(rel)
            for build, _ in LISTS.values():
                if build in text:
                    found.setdefault(build, rel)
            todo += re.findall(r"\b(scripts/[\w.-]+|\.ci/[\w.-]+)", text)
            d = os.path.dirname(rel)
            todo += [os.path.normpath(os.path.join(d, x))
                     for x in re.findall(r"\$\(dirname [^)]*\)/([\w.-]+)", text)]
        for build, _ in LISTS.values():
            self.assertIn(build, found, "CI (%s) must install the packages of %s, as the "
                          "Dockerfile does, so the image cannot drift from what CI tests" % (
                              " -> ".join(sorted(seen)), build))


class CMakeDependenciesTest(Counted):
    def test_pkg_config_modules_come_from_build_packages(self):
        if not (shutil.which("dpkg") and shutil.which("pkg-config")):
            self.skipTest("needs dpkg and pkg-config")
        mods = set()
        for root, dirs, files in os.walk(SRC):
            dirs[:] = [d for d in dirs if not d.startswith((".", "build"))]
            for f in files:
                if f == "CMakeLists.txt" or f.endswith(".cmake"):
                    with open(os.path.join(root, f)) as fh:
                        for m in re.finditer(r"pkg_check_modules\s*\(([^)]*)\)", fh.read()):
                            words = m.group(1).split()[1:]
                            mods |= {re.split(r"[<>=]", w)[0] for w in words
                                     if w not in ("REQUIRED", "QUIET", "IMPORTED_TARGET",
                                                  "GLOBAL", "NO_CMAKE_PATH",
                                                  "NO_CMAKE_ENVIRONMENT_PATH")}
        self.assertIn("hiredis", mods)
        build = set(package_list(HOST_BUILD))
        for mod in sorted(mods):
            p = subprocess.run(["pkg-config", "--variable=pcfiledir", mod],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, "pkg-config does not find %s" % mod)
            pc = os.path.join(p.stdout.strip(), mod + ".pc")
            pkg = dpkg_owner(pc)
            self.assertIsNotNone(pkg, "%s (%s) belongs to no Debian package" % (mod, pc))
            self.assertIn(pkg, build, "CMake needs pkg-config module %s from %s: add it to %s"
                          % (mod, pkg, HOST_BUILD))

    def test_installed_binaries_link_only_runtime_packages(self):
        for tool in ("cmake", "readelf", "dpkg", "ldconfig"):
            if not shutil.which(tool) and not os.path.exists("/sbin/" + tool):
                self.skipTest("needs %s" % tool)
        self.assertTrue(os.path.exists(os.path.join(BUILD, "CMakeCache.txt")),
                        "EB_BUILD_DIR must be a configured, built tree")
        stage = tempfile.mkdtemp(prefix="eb-stage-")
        try:
            p = subprocess.run(["cmake", "--install", BUILD], capture_output=True, text=True,
                               env=dict(os.environ, DESTDIR=stage))
            self.assertEqual(p.returncode, 0, "cmake --install failed:\n" + p.stdout + p.stderr)
            elves = []
            for root, _, files in os.walk(stage):
                for f in files:
                    path = os.path.join(root, f)
                    if not os.path.islink(path):
                        with open(path, "rb") as fh:
                            if fh.read(4) == b"\x7fELF":
                                elves.append(path)
            names = [os.path.basename(e) for e in elves]
            self.assertIn("expiry-bridge", names, "the install must contain the bridge")
            libs = ldconfig_map()
            runtime = set(package_list(HOST_RUNTIME)) | BASE_PACKAGES
            for elf in elves:
                out = subprocess.run(["readelf", "-d", elf], capture_output=True, text=True).stdout
                for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
                    path = libs.get(lib)
                    self.assertIsNotNone(path, "%s needs %s, which ldconfig does not know" % (
                        os.path.basename(elf), lib))
                    pkg = dpkg_owner(path)
                    self.assertIn(pkg, runtime, "%s links %s from package %s: add it to %s"
                                  % (os.path.basename(elf), lib, pkg, HOST_RUNTIME))
        finally:
            shutil.rmtree(stage, ignore_errors=True)


class InstallTest(Counted):
    # installed path (under the prefix) -> the source file it must equal
    SHIPPED = {
        "share/expiry-bridge/expiry-bridge.example.yaml": "config/expiry-bridge.example.yaml",
        "share/expiry-bridge/demo.yaml": "config/demo.yaml",
        "share/expiry-bridge/config.schema.json": "config/config.schema.json",
        "share/expiry-bridge/redis/eb_timers.lua": "config/redis/eb_timers.lua",
        "share/doc/expiry-bridge/event.schema.json": "docs/event.schema.json",
    }

    def test_cmake_install_prefix_installs_the_bridge_and_every_shipped_file(self):
        self.assertTrue(os.path.exists(os.path.join(BUILD, "CMakeCache.txt")),
                        "EB_BUILD_DIR must be a configured, built tree")
        prefix = tempfile.mkdtemp(prefix="eb-prefix-")
        try:
            p = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, "cmake --install failed:\n" + p.stdout + p.stderr)
            bridge = os.path.join(prefix, "bin", "expiry-bridge")
            self.assertTrue(os.access(bridge, os.X_OK), "bin/expiry-bridge is installed")
            for rel, src in sorted(self.SHIPPED.items()):
                path = os.path.join(prefix, rel)
                self.assertTrue(os.path.isfile(path), "%s is installed" % rel)
                with open(path, "rb") as got, open(os.path.join(SRC, src), "rb") as want:
                    self.assertEqual(got.read(), want.read(), "%s equals %s" % (rel, src))
            outside = [l for l in p.stdout.split("\n")
                       if l.startswith("-- Installing: ") and prefix not in l]
            self.assertEqual(outside, [], "everything goes under the prefix")
        finally:
            shutil.rmtree(prefix, ignore_errors=True)


def ldconfig_map():
    """soname -> path, as the dynamic linker would find it (64-bit first)."""
    exe = shutil.which("ldconfig") or "/sbin/ldconfig"
    out = subprocess.run([exe, "-p"], capture_output=True, text=True).stdout
    found = {}
    for name, flags, path in re.findall(r"^\s+(\S+) \(([^)]*)\) => (\S+)", out, re.M):
        if name not in found or ("64" in flags and "64" not in found[name][0]):
            found[name] = (flags, path)
    return {k: v[1] for k, v in found.items()}


def dpkg_owner(path):
    """The Debian package owning path (trying the /usr-merged twin too)."""
    real = os.path.realpath(path)
    cands = {path, real}
    for p in list(cands):
        if p.startswith("/usr/"):
            cands.add(p[4:])
        else:
            cands.add("/usr" + p)
    for c in sorted(cands):
        p = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.split(":")[0].strip()
    return None


class DockerfileTest(Counted):
    @classmethod
    def setUpClass(cls):
        cls.text = read("Dockerfile")
        cls.instr = dockerfile_instructions(cls.text)
        cls.args = {}
        for stage, ins, arg in cls.instr:
            if ins == "ARG" and stage == -1 and "=" in arg:
                k, v = arg.split("=", 1)
                cls.args[k] = v
        cls.stages = max(s for s, _, _ in cls.instr) + 1
        cls.final = cls.stages - 1

    def stage(self, i):
        return [(ins, arg) for s, ins, arg in self.instr if s == i]

    def expand(self, s):
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.args.get(m.group(1), m.group(0)), s)

    def test_every_stage_is_debian_13_slim(self):
        froms = [self.expand(arg.split()[0]) for _, ins, arg in self.instr if ins == "FROM"]
        self.assertGreaterEqual(len(froms), 2, "multi-stage")
        for f in froms:
            self.assertEqual(f, BASE_IMAGE)

    def test_apt_installs_only_from_the_ci_package_lists(self):
        wanted = {0: PKG_BUILD, self.final: PKG_RUNTIME}
        for s in range(self.stages):
            runs = [arg for ins, arg in self.stage(s) if ins == "RUN"]
            installs = [r for r in runs if "apt-get install" in r]
            if s in wanted:
                self.assertEqual(len(installs), 1, "stage %d: one apt-get install" % s)
                r = installs[0]
                self.assertIn(APT_LINE % wanted[s], r,
                              "stage %d must run exactly `%s`" % (s, APT_LINE % wanted[s]))
                self.assertEqual(r.count("apt-get install"), 1,
                                 "stage %d installs packages not in %s" % (s, wanted[s]))
                self.assertIn("apt-get update", r)
                self.assertIn("rm -rf /var/lib/apt/lists/*", r, "clean apt lists in the same layer")
                copies = [a for i, a in self.stage(s) if i == "COPY"]
                self.assertIn("%s %s" % (wanted[s], wanted[s]), copies,
                              "stage %d copies %s to the relative path it installs from" % (s, wanted[s]))
                # ARG, not ENV: the setting must not persist into the image.
                self.assertIn(("ARG", "DEBIAN_FRONTEND=noninteractive"), self.stage(s))
            else:
                self.assertEqual(installs, [], "stage %d" % s)

    def test_build_stage_builds_tests_and_installs(self):
        runs = " && ".join(arg for ins, arg in self.stage(0) if ins == "RUN")
        self.assertRegex(runs, r"cmake -S \. -B (\S+) .*-DCMAKE_INSTALL_PREFIX=/usr")
        self.assertIn("-DEB_WERROR=ON", runs)
        self.assertRegex(runs, r"ctest --test-dir \S+ -L unit")
        self.assertRegex(runs, r"DESTDIR=/staging cmake --install")
        self.assertIn("/staging/usr/lib/expiry-bridge/plugins", runs)
        # The unit tests come before the install: a failing test fails the image.
        self.assertLess(runs.index("ctest"), runs.index("cmake --install"))
        # What the image ships comes from the install rules, not from the
        # source tree by hand: a copy of config/ would hide a missing rule.
        self.assertNotRegex(runs, r"\b(cp|install)\b[^&;]*\s(\./)?(config|docs)/",
                            "copies shipped files by hand instead of cmake --install")

    def test_runtime_stage_is_non_root_and_runs_the_bridge(self):
        final = self.stage(self.final)
        users = [a for i, a in final if i == "USER"]
        self.assertTrue(users, "the runtime stage sets USER")
        uid = users[-1].split(":")[0]
        self.assertRegex(uid, r"^\d+$", "numeric USER, so runAsNonRoot can verify it")
        self.assertEqual(int(uid), 10001)
        kinds = [i for i, _ in final]
        last_user = len(kinds) - 1 - kinds[::-1].index("USER")
        self.assertNotIn("RUN", kinds[last_user:], "nothing runs after USER")
        self.assertIn("COPY --from=build /staging/ /", ["%s %s" % (i, a) for i, a in final])
        runs = " ".join(a for i, a in final if i == "RUN")
        self.assertIn("--uid 10001", runs)
        self.assertIn("expiry-bridge --version", runs, "smoke-test the libraries at build time")
        entry = [a for i, a in final if i == "ENTRYPOINT"]
        cmd = [a for i, a in final if i == "CMD"]
        self.assertEqual(entry, ['["expiry-bridge"]'])
        cmd = json.loads(cmd[-1])
        self.assertEqual(cmd[:2], ["run", "-c"])
        helpers = read("helm/expiry-bridge/templates/_helpers.tpl")
        cdir = re.search(r'define "expiry-bridge.configDir" -}}([^{]+){{', helpers).group(1)
        cfile = re.search(r'define "expiry-bridge.configFile" -}}([^{]+){{', helpers).group(1)
        self.assertEqual(cmd[2], "%s/%s" % (cdir, cfile), "CMD config path = the chart's mount")
        values = yaml.safe_load(read("helm/expiry-bridge/values.yaml"))
        self.assertIn(("EXPOSE", str(values["metrics"]["port"])), final)
        self.assertEqual(values["podSecurityContext"]["runAsUser"], int(uid),
                         "the chart runs as the image's user")

    def test_copy_sources_exist_and_are_not_dockerignored(self):
        patterns = [l.strip() for l in read(".dockerignore").split("\n")
                    if l.strip() and not l.startswith("#")]
        self.assertIn(".git", patterns)
        self.assertTrue(dockerignored("build-helm/CMakeCache.txt", patterns),
                        "build trees stay out of the context")
        for s, ins, arg in self.instr:
            if ins not in ("COPY", "ADD") or "--from=" in arg:
                continue
            words = [w for w in shlex.split(arg) if not w.startswith("--")]
            for src in words[:-1]:
                if src == ".":
                    continue
                self.assertTrue(os.path.exists(os.path.join(SRC, src)), "COPY %s: missing" % src)
                self.assertFalse(dockerignored(src, patterns), "COPY %s: dockerignored" % src)
        for needed in (PKG_BUILD, PKG_RUNTIME, "CMakeLists.txt", "src/main.c", "config"):
            self.assertFalse(dockerignored(needed, patterns), needed)


class WorkflowTest(Counted):
    def test_workflow_runs_ci_and_the_real_helm_built_from_its_go_module(self):
        wf = yaml.safe_load(read(".github/workflows/ci.yml"))
        jobs = wf["jobs"]
        runs = {name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
        uses = {name: [s.get("uses", "") for s in job["steps"]] for name, job in jobs.items()}
        ci = [n for n, r in runs.items() if re.search(r"(^|\s)\.ci/run\b", r)]
        self.assertTrue(ci, "a job runs .ci/run")
        self.assertIn(jobs[ci[0]].get("container"), ("debian:12", {"image": "debian:12"}))
        # .ci/run builds helm with Go >= 1.26 and runs the JS SDK on Node >= 20.
        self.assertTrue(any(u.startswith("actions/setup-go@") for u in uses[ci[0]]))
        self.assertTrue(any(u.startswith("actions/setup-node@") for u in uses[ci[0]]))
        helm = [n for n, r in runs.items() if "scripts/fetch-helm.sh" in r]
        self.assertTrue(helm, "a job builds helm with scripts/fetch-helm.sh, as .ci/run does")
        self.assertFalse(any(x.startswith("azure/setup-helm@") for u in uses.values() for x in u),
                         "one helm: the one built from its Go module")
        r = runs[helm[0]]
        self.assertRegex(r, r"lint --strict helm/expiry-bridge\n")
        self.assertRegex(r, r"lint --strict helm/expiry-bridge -f tests/helm/values-full.yaml")
        self.assertRegex(r, r"template [^\n]*helm/expiry-bridge")
        self.assertRegex(r, r"template [^\n]*helm/expiry-bridge[^\n]*\n?[^\n]*-f tests/helm/values-full.yaml")
        self.assertIn("tests/helm/bad-values/*.yaml", r, "every bad values file is refused")
        self.assertTrue(any("docker build" in x for x in runs.values()), "a job builds the image")

    def test_test_script_fetches_before_testing_and_requires_what_it_fetched(self):
        text = read("scripts/test.sh")
        for needed in ("scripts/fetch-helm.sh", "scripts/fetch-sdks.sh",
                       "export EB_REQUIRE_FETCHED=1"):
            self.assertIn(needed, text)
        # The first command that runs ctest (comments and variables that
        # merely mention it do not count) comes after the export.
        run = re.search(r"^[ \t]*(?:[A-Za-z_]+=\S*\s+)*ctest\s", text, re.M)
        self.assertTrue(run, "scripts/test.sh runs ctest")
        self.assertLess(text.index("export EB_REQUIRE_FETCHED=1"), run.start())


def main():
    t0 = time.monotonic()
    prog = unittest.main(exit=False, argv=sys.argv)
    result = prog.result
    print("helm.packaging: %d tests, %d assertions, %.1f s" % (
        result.testsRun, assertions(), time.monotonic() - t0))
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
