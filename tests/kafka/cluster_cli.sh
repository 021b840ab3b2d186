#!/usr/bin/env bash
# tests/kafka/cluster_cli.sh -- the real-Kafka helper's CLI as a shell test
# drives it (ctest kafka.cluster_cli): BOOTSTRAP when ready, the line
# protocol (topic, leader, kill, start, an error answer), a message through
# the cluster with kcat, and no JVM left behind once stdin closes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
helper="$here/../support/kafka_cluster.py"
fail() { echo "FAIL: $*" >&2; exit 1; }

coproc KC { exec /usr/bin/python3 "$helper" --topic cli.t:3; }
pid=$KC_PID
trap 'kill -TERM $pid 2>/dev/null || true' EXIT

# ask LINE: send one command, print the answer (a 120 s bound, never a hang).
ask() {
    echo "$1" >&"${KC[1]}"
    local answer
    read -r -t 120 answer <&"${KC[0]}" || fail "no answer to '$1'"
    echo "$answer"
}
jvms() {  # the helper's child processes (its broker and controller JVMs)
    local n=0 d
    for d in /proc/[0-9]*; do
        [ "$(awk '{print $4}' "$d/stat" 2>/dev/null)" = "$pid" ] && n=$((n + 1))
    done
    echo "$n"
}

read -r -t 180 line <&"${KC[0]}" || fail "no BOOTSTRAP line within 180 s"
[[ "$line" == BOOTSTRAP\ * ]] || fail "expected BOOTSTRAP, got '$line'"
bootstrap=${line#BOOTSTRAP }
[ "$(jvms)" -eq 4 ] || fail "expected 4 JVMs (controller + 3 brokers), found $(jvms)"

[ "$(ask 'topic cli.u 2')" = ok ] || fail "topic"
leader=$(ask 'leader cli.t 0')
[[ "$leader" =~ ^ok\ [123]$ ]] || fail "leader: '$leader'"
leader=${leader#ok }
[ "$(ask "kill $leader")" = ok ] || fail "kill $leader"
[ "$(jvms)" -eq 3 ] || fail "broker $leader still running after kill"
echo "hello" | kcat -P -b "$bootstrap" -t cli.t -p 0 -X acks=all || fail "produce with one broker down"
[ "$(ask "start $leader")" = ok ] || fail "start $leader"
[ "$(jvms)" -eq 4 ] || fail "broker $leader not running after start"
got=$(kcat -C -b "$bootstrap" -t cli.t -p 0 -o beginning -c 1 -e -q)
[ "$got" = hello ] || fail "consumed '$got'"
[[ "$(ask 'bogus 1')" == error:* ]] || fail "an unknown command is not answered with error:"

exec {KC[1]}>&-  # EOF on the helper's stdin: it stops every JVM and exits
for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "the helper did not exit on stdin EOF"
trap - EXIT
echo "cluster_cli: BOOTSTRAP $bootstrap; killed and restarted broker $leader; 1 message" \
     "through; stopped on EOF"
echo "1 passed, 0 failed"
