#!/usr/bin/env bash
# scripts/fetch-kafka.sh -- the jars of Apache Kafka (KRaft broker and
# controller, main class kafka.Kafka) resolved from Maven Central with
# `mvn dependency:copy-dependencies` into a cache outside the repository,
# for the real-Kafka tests (tests/kafka/) and benchmarks (bench/ --kafka real).
#
#   scripts/fetch-kafka.sh            resolve if needed; print the Kafka home
#   scripts/fetch-kafka.sh --check    print the Kafka home if cached, else exit 1
#                                     (never touches the network)
#
# The Kafka home is $EB_KAFKA_CACHE/kafka-$EB_KAFKA_VERSION and holds libs/
# (every runtime jar), log4j2.properties (a minimal config: warnings and
# errors to the console) and .complete (written last: a home without it is
# resolved again). The last line on stdout is the home; messages go to stderr.
#
#   EB_KAFKA_VERSION   default 4.4.0 (any 4.x served as org.apache.kafka:kafka_2.13)
#   EB_KAFKA_CACHE     default /var/cache/expiry-bridge when writable (root, CI),
#                      else ${XDG_CACHE_HOME:-~/.cache}/expiry-bridge. Maven's own
#                      repository (plugins included) lives in $EB_KAFKA_CACHE/m2,
#                      so a warm cache needs no network at all.
#   EB_KAFKA_FETCH_TIMEOUT  seconds before a resolution is given up (default 900)
#
# Exit codes: 0 the home is ready; 1 it could not be resolved (the message
# names what failed and where Maven's log is); 2 bad command line.
set -euo pipefail

version=${EB_KAFKA_VERSION:-4.4.0}
# log4j-slf4j-impl binds Kafka's slf4j 1.7 API to log4j2 (kafka_2.13 brings
# log4j-core but no binding: without one every broker log line is lost).
log4j_version=2.25.5

default_cache() {
    if [ -d /var/cache/expiry-bridge ] && [ -w /var/cache/expiry-bridge ]; then
        echo /var/cache/expiry-bridge
    elif [ ! -e /var/cache/expiry-bridge ] && [ -w /var/cache ]; then
        echo /var/cache/expiry-bridge
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/expiry-bridge"
    fi
}
cache=${EB_KAFKA_CACHE:-$(default_cache)}
home="$cache/kafka-$version"

say() { echo "fetch-kafka: $*" >&2; }

ready() { [ -f "$home/.complete" ] && [ -f "$home/libs/kafka_2.13-$version.jar" ]; }

case "${1:-}" in
    "") ;;
    --check)
        ready && { echo "$home"; exit 0; }
        say "Kafka $version is not in $cache (run scripts/fetch-kafka.sh)"
        exit 1 ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) say "unknown argument: $1 (try --help)"; exit 2 ;;
esac

if ready; then
    echo "$home"
    exit 0
fi

command -v mvn >/dev/null ||
    { say "mvn not found: install Debian's maven package (apt-get install maven)"; exit 1; }
command -v java >/dev/null ||
    { say "java not found: install default-jre-headless"; exit 1; }

mkdir -p "$cache" || { say "cannot create the cache directory $cache (set EB_KAFKA_CACHE)"; exit 1; }
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

cat >"$work/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- written by scripts/fetch-kafka.sh: the runtime classpath of a Kafka broker -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.expiry-bridge</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$log4j_version</version>
    </dependency>
  </dependencies>
</project>
EOF

say "resolving org.apache.kafka:kafka_2.13:$version and its dependencies into $cache"
t0=$(date +%s)
log="$cache/fetch-kafka.log"
rc=0
timeout "${EB_KAFKA_FETCH_TIMEOUT:-900}" mvn -B -q -Dstyle.color=never -f "$work/pom.xml" \
    -Dmaven.repo.local="$cache/m2" \
    dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$work/libs" >"$log" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
    say "FAILED to resolve org.apache.kafka:kafka_2.13:$version with Maven" \
        "($([ $rc -eq 124 ] && echo "timed out after ${EB_KAFKA_FETCH_TIMEOUT:-900} s" ||
            echo "exit $rc")); from $log:"
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E "\[ERROR\] (Failed|Could not|Non-resolvable|Plugin)" |
        head -3 | sed 's/^/    /' >&2 || true
    say "the real-Kafka tests need Maven Central (or a mirror in ~/.m2/settings.xml)," \
        "or a cache made elsewhere copied to $cache"
    exit 1
fi
[ -f "$work/libs/kafka_2.13-$version.jar" ] ||
    { say "Maven finished but kafka_2.13-$version.jar is not among the jars (see $log)"; exit 1; }

cat >"$work/log4j2.properties" <<'EOF'
# written by scripts/fetch-kafka.sh: warnings and errors of a test broker to
# its console (the cluster helper sends that to the node's log file).
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.console.ref = STDOUT
# One INFO line per start: "Kafka Server started" tells a slow start from a hang.
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
EOF
echo "$version" >"$work/.complete"
rm -rf "$home"
mkdir -p "$home"
mv "$work/libs" "$work/log4j2.properties" "$home/"
mv "$work/.complete" "$home/.complete"  # last: marks the home as whole
say "Kafka $version: $(ls "$home/libs" | wc -l) jars in $home/libs ($(($(date +%s) - t0)) s)"
echo "$home"
