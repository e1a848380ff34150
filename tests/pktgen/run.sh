#!/usr/bin/env bash
# Load test of one Baton forwarding path with Pktgen-DPDK, on one host over
# memif (README, "Load tests with Pktgen-DPDK"). As root:
#
#   PKTGEN=/path/to/pktgen tests/pktgen/run.sh passthrough|origin-forward|target-c2s|target-s2c
#
# PKTGEN: a pktgen binary built with Lua (this script does not build it).
# Optional: BATON (default target/release/baton), DURATION (seconds measured,
# default 10), PKTGEN_LCORES (EAL --lcores, default 0@0,1@0: all of pktgen
# on CPU 0, beside Baton's control lcore; Baton's worker has CPU 1),
# PKTGEN_MEM (MiB, default 3072), HOST_LINK=veth (a veth pair read with
# af_packet instead of the host-side memif).
#
# Baton runs in a network namespace of its own, with host.address on lo for
# its control channel to listen on: no interface carries it otherwise.
# Everything is removed on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=/tmp/baton-pktgen # the configs name their sockets and key here
ns=baton-pktgen

die() { echo "run.sh: $*" >&2; exit 1; }

path=${1:-}
case $path in
passthrough | origin-forward | target-c2s | target-s2c) ;;
*) echo "usage: PKTGEN=/path/to/pktgen $0 passthrough|origin-forward|target-c2s|target-s2c" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || die "run as root"
[ -x "${PKTGEN:-}" ] || die "set PKTGEN to a pktgen binary built with -Denable_lua=true"
baton=${BATON:-$here/../../target/release/baton}
[ -x "$baton" ] || die "no Baton binary at $baton (make build, or set BATON)"
export DURATION=${DURATION:-10}
lcores=${PKTGEN_LCORES:-0@0,1@0}
host_link=${HOST_LINK:-memif}
[ ! -e $work ] || die "$work exists: another run is going on, or a stale one (remove it)"

baton_pid='' pktgen_pid=''
cleanup() {
    set +e
    [ -n "$pktgen_pid" ] && kill "$pktgen_pid" 2>/dev/null && wait "$pktgen_pid" 2>/dev/null
    if [ -n "$baton_pid" ]; then
        kill -TERM "$baton_pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$baton_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$baton_pid" 2>/dev/null
        wait "$baton_pid" 2>/dev/null
    fi
    ip netns del $ns 2>/dev/null
    rm -rf $work
    # DPDK's runtime directories of this run's Baton and pktgen.
    rm -rf /var/run/dpdk/baton-pktgen-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM
failed() {
    set +e
    echo "--- pktgen log (tail)"; tail -n 30 $work/pktgen.log 2>/dev/null | tr -d '\033'
    echo "--- baton log (tail)"; tail -n 30 $work/baton.log 2>/dev/null
    die "$*"
}

mkdir -m 700 $work
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $work/cluster.key
ip netns add $ns
ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n $ns link set lo up
addr=$(sed -n 's|^address = "\([0-9.]*\)/.*|\1|p' "$here/$path.toml")
[ -z "$addr" ] || ip -n $ns addr add "$addr/32" dev lo

cfg=$work/baton.toml
wire_vdev="net_memif0,role=client,socket=$work/wire.sock,socket-abstract=no,mac=02:00:c6:13:00:01"
if [ "$host_link" = veth ]; then
    ip -n $ns link add btpg-b type veth peer name btpg-g
    for i in btpg-b btpg-g; do ip -n $ns link set $i arp off up; done
    sed 's|^vdev = "net_memif1,.*|vdev = "net_af_packet1,iface=btpg-b"|' "$here/$path.toml" > $cfg
    host_vdev="net_af_packet1,iface=btpg-g"
    socks="wire.sock stats.sock"
else
    cp "$here/$path.toml" $cfg
    host_vdev="net_memif1,role=client,socket=$work/host.sock,socket-abstract=no,id=1"
    socks="wire.sock host.sock stats.sock"
fi

echo "baton: $baton run --config $path.toml (host link: $host_link)"
ip netns exec $ns "$baton" run --config $cfg > $work/baton.log 2>&1 &
baton_pid=$!
for _ in $(seq 150); do
    kill -0 $baton_pid 2>/dev/null || failed "Baton stopped at start-up"
    up=1
    for s in $socks; do [ -S $work/$s ] || up=0; done
    [ $up = 1 ] && break
    sleep 0.1
done
[ $up = 1 ] || failed "Baton did not open its sockets within 15 s"

pktgen_cmd=("$PKTGEN" --no-huge -m "${PKTGEN_MEM:-3072}" --file-prefix baton-pktgen-gen --lcores "$lcores"
    --no-pci --vdev "$wire_vdev" --vdev "$host_vdev" -- -m "1.[0-1]" -f "$here/$path.lua")
echo "pktgen: ${pktgen_cmd[*]}"
timeout --kill-after=5 $((DURATION + 60)) ip netns exec $ns "${pktgen_cmd[@]}" \
    < /dev/null > $work/pktgen.log 2>&1 &
pktgen_pid=$!
wait $pktgen_pid || true
pktgen_pid=''
grep -aq 'RESULT' $work/pktgen.log || failed "pktgen printed no results"
grep -ao 'RESULT.*' $work/pktgen.log | sed 's/^RESULT /pktgen /'

echo "baton counters (rows that are all zero left out):"
"$baton" stats --socket $work/stats.sock | awk '!(NF >= 2 && $NF == "0" && (NF == 2 || $(NF-1) == "0"))'
