#!/usr/bin/env bash
# tests/bench/idle-cpu.sh [BIN]: the CPU an idle node's Baton uses over 10 s,
# per thread (time on a CPU from /proc/PID/task/*/schedstat, in ns: the
# 10 ms ticks of utime+stime are too coarse at these rates), on a 2-node HANDOFF=1
# testbed. Extra environment (WAKE, IDLE_SLEEP_MAX_US) goes to netns.sh.
# Needs root; prints figures only.
set -u
cd "$(dirname "$0")/../.."; ID=${ID:-batonidle}; BIN=${1:-${BATON_BIN:-target/release/baton}}; W=$(mktemp -d /tmp/baton-idle.XXXXXX)
SECS=${SECS:-10}
trap 'bash tests/testbed/netns.sh down $ID $W >/dev/null 2>&1; rm -rf $W' EXIT
bash tests/testbed/netns.sh down $ID 2>/dev/null; HANDOFF=1 bash tests/testbed/netns.sh up $ID 2 "$BIN" $W >/dev/null 2>&1 || { echo "testbed up failed"; exit 1; }
sleep 2
pid=$(ip netns pids $ID-n2 | while read -r p; do [[ $(cat /proc/$p/comm) == baton* ]] && echo $p; done | head -1)
ticks() { for t in /proc/$pid/task/*; do echo "$(cat $t/comm) $(awk '{print $1}' $t/schedstat)"; done | sort; }
a=$(ticks); sleep $SECS; b=$(ticks)
join <(echo "$a" | awk '{s[$1]+=$2} END{for(k in s) print k, s[k]}' | sort) \
     <(echo "$b" | awk '{s[$1]+=$2} END{for(k in s) print k, s[k]}' | sort) |
  awk -v s=$SECS '{d=($3-$2)/1e9/s*100; tot+=d; if (d>=0.005) printf "  %5.2f %%  %s\n", d, $1} END{printf "  %5.2f %% of a core: node 2 idle over %d s\n", tot, s}'
