#!/usr/bin/env bash
# `make demo`: three Baton nodes and a client in network namespaces, as a
# cluster. Sends real traffic (curl, wrk) through Baton on every node, shows
# connections handed off between nodes and answered directly by the node
# that has the content, prints each node's counters, shows what happens
# when a node's Baton stops, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/../.."

BATON=${BATON_BIN:-target/release/baton}
ID=batondemo
NODES=3
WORK=$(mktemp -d /tmp/baton-demo.XXXXXX)
TB=tests/testbed/netns.sh

cleanup() { bash $TB down "$ID" "$WORK"; rm -rf "$WORK"; }
trap cleanup EXIT
bash $TB down "$ID" 2>/dev/null || true # whatever an interrupted demo left

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
client() { ip netns exec "$ID-client" "$@"; }
ip_of() { echo "198.18.0.$((10 + $1))"; }

step "Starting $NODES nodes: nginx behind Baton on each, one client"
echo "Each node I alone has the files under /nI/; the cluster's rules send those paths to node I."
HANDOFF=1 bash $TB up "$ID" "$NODES" "$BATON" "$WORK"

step "Each node serves its own content, through its own Baton"
for i in $(seq $NODES); do
    printf 'client -> node %s (%s): %s\n' "$i" "$(ip_of "$i")" "$(client curl -sf --max-time 5 "http://$(ip_of "$i")/node.txt")"
done

step "A 4 MiB download from each node arrives intact"
for i in $(seq $NODES); do
    got=$(client curl -sf --max-time 60 "http://$(ip_of "$i")/big.bin" | sha256sum | awk '{print $1}')
    want=$(cat "$WORK/n$i/big.sha256")
    [[ $got == "$want" ]] && verdict=ok || verdict=MISMATCH
    printf 'node %s: sha256 %s... %s\n' "$i" "${got:0:16}" "$verdict"
done

step "Rare TCP handoff: the client asks node 1 for content only node 2 has"
for path in n1/whoami.txt n2/whoami.txt n3/whoami.txt; do
    printf 'client -> node 1 (%s) GET /%s: %s\n' "$(ip_of 1)" "$path" "$(client curl -sf --max-time 5 "http://$(ip_of 1)/$path")"
done
want=$(awk '/n2\/10m.bin/ {print $1}' "$WORK/n2/sha256.txt")
got=$(client curl -sf --max-time 60 "http://$(ip_of 1)/n2/10m.bin" | sha256sum | awk '{print $1}')
[[ $got == "$want" ]] && verdict="intact, answered by node 2 directly" || verdict=MISMATCH
echo "client -> node 1 GET /n2/10m.bin: sha256 ${got:0:16}... $verdict"
for i in 1 2; do
    "$BATON" stats --json --config "$WORK/n$i.toml" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = {k: sum(w["counters"][k] for w in d["workers"]) for k in d["workers"][0]["counters"]}
print("node %s: conns_seen=%d served_local=%d handed_off=%d handed_in=%d translated_packets=%d wire_tx_bytes=%d" % (
    d["node"], c["conns_seen"], c["served_local"], c["handed_off"], c["handed_in"], c["translated_packets"],
    next(p for p in d["ports"] if p["role"] == "wire")["counters"]["tx_bytes"]))'
done
echo "(node 2 sent the 10 MB itself; node 1 only forwarded the client's small ACKs to it)"

step "Every request on a keep-alive connection goes to its node: one connection, four requests"
client curl -s --max-time 10 -w '  -> HTTP %{http_code}, new connections for it: %{num_connects}\n' \
    "http://$(ip_of 1)/n2/whoami.txt" "http://$(ip_of 1)/n3/whoami.txt" \
    "http://$(ip_of 1)/n1/whoami.txt" "http://$(ip_of 1)/n2/whoami.txt"
"$BATON" stats --json --config "$WORK/n1.toml" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = {k: sum(w["counters"][k] for w in d["workers"]) for k in d["workers"][0]["counters"]}
done = c["moves_completed"]
print("node 1: moves_started=%d moves_completed=%d, %.2f ms per move" % (
    c["moves_started"], done, c["move_micros"] / done / 1000 if done else 0))'
echo "(the connection moved from node 2 to node 3, back to node 1, and on to node 2 again)"

step "wrk, 2 s and 20 connections per node"
for i in $(seq $NODES); do
    client wrk -t1 -c20 -d2s --timeout 2s "http://$(ip_of "$i")/index.html" |
        awk -v n="$i" '/Requests\/sec/ {printf "node %s: %s requests/s\n", n, $2} /Socket errors/ {print "node " n ": " $0}'
done

step "Baton's counters on each node (baton stats)"
for i in $(seq $NODES); do
    "$BATON" stats --config "$WORK/n$i.toml"
    echo
done

step "Stop Baton on node 3: the node drops off the network"
bash $TB stop-baton "$ID" "$WORK" 3
if client curl -sf --max-time 2 "http://$(ip_of 3)/node.txt" >/dev/null; then
    echo "node 3 still answers (unexpected)"
else
    echo "node 3 does not answer: its traffic only ever went through Baton"
fi
sleep 1.5 # node 1 notices node 3 is down
code=$(client curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://$(ip_of 1)/n3/whoami.txt")
echo "client -> node 1 GET /n3/whoami.txt: HTTP $code (node 3 is down and nobody else has its content: an honest, retryable 503, promptly)"

step "Done; cleaning up"
