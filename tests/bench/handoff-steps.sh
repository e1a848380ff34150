#!/usr/bin/env bash
# tests/bench/handoff-steps.sh [BIN]: where a handoff's added time to first byte goes.
# tcpdump on the LAN bridge and on both nodes' host ports during 30 handed-off fetches
# of a 1 KB object; prints the median time of each step (needs root; figures only).
set -u
cd "$(dirname "$0")/../.."; ID=batonsteps; BIN=${1:-${BATON_BIN:-target/release/baton}}; W=$(mktemp -d /tmp/baton-steps.XXXXXX); C=$(mktemp -d /tmp/baton-steps-pcap.XXXXXX)
trap 'bash tests/testbed/netns.sh down $ID $W >/dev/null 2>&1; rm -rf $C $W' EXIT
bash tests/testbed/netns.sh down $ID 2>/dev/null; HANDOFF=1 bash tests/testbed/netns.sh up $ID 2 "$BIN" $W >/dev/null 2>&1
ip netns exec $ID-lan tcpdump -i br0 -nn -U -w $C/br.pcap 2>/dev/null & p1=$!
ip netns exec $ID-n1 tcpdump -i baton0 -nn -U -w $C/n1.pcap 2>/dev/null & p2=$!
ip netns exec $ID-n2 tcpdump -i baton0 -nn -U -w $C/n2.pcap 2>/dev/null & p3=$!
sleep 1
for i in $(seq 30); do ip netns exec $ID-client curl -s -o /dev/null http://198.18.0.11/n2/1k.bin; sleep 0.05; done
sleep 0.5; kill $p1 $p2 $p3; wait 2>/dev/null

python3 - $C <<'PY'
import subprocess, sys, statistics, re
def rd(f): return subprocess.run(["tcpdump", "-nn", "-tt", "-r", f], capture_output=True, text=True).stdout.splitlines()
br, n1, n2 = (rd(f"{sys.argv[1]}/{n}.pcap") for n in ("br", "n1", "n2"))
def t(l): return float(l.split()[0])
def length(l):
    m = re.search(r"length (\d+)", l)
    return int(m.group(1)) if m else 0
# The HandoffRequest is the control channel's only segment of more than 100 bytes toward node 2.
def request(l): return "> 198.18.0.12.7300" in l and length(l) > 100
names = [
    "GET on the LAN -> HandoffRequest on n1's host port (n1: hold, decision, its kernel's TCP)",
    "-> HandoffRequest on the LAN (n1's worker, host -> wire)",
    "-> HandoffRequest on n2's host port (n2's worker wakes, wire -> host)",
    "-> replayed SYN on n2's host port (n2's kernel, the message to the worker, the replay)",
    "-> SYN-ACK on n2's host port (n2's kernel)",
    "-> request injected on n2's host port",
    "-> response on n2's host port (nginx)",
    "-> response on the LAN (n2's worker, host -> wire)",
]
steps = {k: [] for k in names}
for g in (l for l in br if "HTTP: GET" in l):
    tg = t(g); port = re.search(r"198\.18\.0\.100\.(\d+) >", g).group(1)
    to_client = f"> 198.18.0.100.{port}"; from_client = f"100.{port} >"
    try:
        a = next(t(l) for l in n1 if t(l) >= tg and request(l))
        b = next(t(l) for l in br if t(l) >= a and request(l))
        c = next(t(l) for l in n2 if t(l) >= b and request(l))
        syn = next(t(l) for l in n2 if from_client in l and "[S]" in l)
        synack = next(t(l) for l in n2 if to_client in l and "[S.]" in l)
        inj = next(t(l) for l in n2 if from_client in l and "HTTP: GET" in l)
        rh = next(t(l) for l in n2 if to_client in l and "HTTP/1.1 200" in l)
        rb = next(t(l) for l in br if to_client in l and "HTTP/1.1 200" in l)
    except StopIteration:
        continue
    for k, v in zip(names, [a - tg, b - a, c - b, syn - c, synack - syn, inj - synack, rh - inj, rb - rh]):
        steps[k].append(v * 1e6)
for k, v in steps.items():
    print("  %6.0f us  %s" % (statistics.median(v), k))
print("  %6.0f us  total, GET to first response byte on the LAN (median of %d)"
      % (statistics.median([sum(x) for x in zip(*steps.values())]), len(v)))
PY
