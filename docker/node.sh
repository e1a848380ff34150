#!/usr/bin/env bash
# A Baton demo node in a container (docker/compose.yaml): writes the node's
# Baton config from the environment, makes demo content, takes over eth0 as
# Baton's wire port and gives its address to Baton's host port, then starts
# nginx and `baton run`. Signals: SIGTERM/SIGINT stop Baton (then nginx),
# SIGHUP is passed on to Baton (reload).
#
# Environment (compose sets the first four):
#   NODE          this node's number I (1..N): node name nI, content /nI/
#   NODES         every node's address, in node order, space-separated
#                 ("172.30.0.11 172.30.0.12 172.30.0.13"); node I is the I-th
#   HANDOFF_NET   cluster.handoff_net (e.g. 172.30.1.0/24; same prefix
#                 length as eth0's address); empty: none
#   CLUSTER_KEY   the cluster key, 64 hex digits (the same on every node);
#                 empty: $BATON_ETC/cluster.key must exist (a mounted secret)
# Paths and names, overridable so that the script runs outside a container
# too (tests/container.rs runs it in network namespaces):
#   BATON (baton), BATON_ETC (/etc/baton), BATON_CONFIG ($BATON_ETC/baton.toml),
#   BATON_RUN (/run/baton: nginx's pid and temp files, the stats socket),
#   WWW_ROOT (/var/www/baton), FILE_PREFIX (baton-nI), WIRE_IFACE (eth0),
#   HOST_IFACE (baton0), CONTROL_LCORE (0), WORKER_LCORE (1), CONTENT_MB (10:
#   the largest demo file, /nI/<CONTENT_MB>m.bin).
set -euo pipefail

log() { echo "baton-node: $*" >&2; }
die() { log "$*"; exit 1; }

[[ ${NODE:-} =~ ^[1-9][0-9]*$ ]] || die "NODE must be this node's number (1, 2, ...), not '${NODE:-}'"
read -r -a nodes <<<"${NODES:-}"
((${#nodes[@]} >= NODE)) || die "NODES must list every node's address, node $NODE's included (got '${NODES:-}')"

BATON=${BATON:-baton}
BATON_ETC=${BATON_ETC:-/etc/baton}
BATON_CONFIG=${BATON_CONFIG:-$BATON_ETC/baton.toml}
BATON_RUN=${BATON_RUN:-/run/baton}
WWW_ROOT=${WWW_ROOT:-/var/www/baton}
FILE_PREFIX=${FILE_PREFIX:-baton-n$NODE}
WIRE_IFACE=${WIRE_IFACE:-eth0}
HOST_IFACE=${HOST_IFACE:-baton0}
CONTENT_MB=${CONTENT_MB:-10}
name=n$NODE

# --- eth0: its address (and default route) go to Baton's host port -------
# On a restart of the container's command the address is already on the
# host port: take it from there.
cidr=$(ip -4 -o addr show dev "$WIRE_IFACE" | awk '{print $4; exit}')
[[ -n $cidr ]] || cidr=$(ip -4 -o addr show dev "$HOST_IFACE" 2>/dev/null | awk '{print $4; exit}')
[[ -n $cidr ]] || die "$WIRE_IFACE has no IPv4 address to hand to Baton"
address=${cidr%/*}
[[ $address == "${nodes[NODE - 1]}" ]] ||
    die "$WIRE_IFACE carries $address, but NODES names ${nodes[NODE - 1]} for node $NODE"
gateway=$(ip -4 route show default | awk '{print $3; exit}')

# --- the config ------------------------------------------------------------
mkdir -p "$BATON_ETC" "$BATON_RUN" "$(dirname "$BATON_CONFIG")"
key_file=$BATON_ETC/cluster.key
if [[ -n ${CLUSTER_KEY:-} ]]; then
    (umask 077 && printf '%s\n' "$CLUSTER_KEY" >"$key_file")
fi
[[ -s $key_file ]] || die "no cluster key: set CLUSTER_KEY or provide $key_file"
peers="" pools="" rules=""
for j in $(seq "${#nodes[@]}"); do
    ((j == NODE)) || peers+="    { name = \"n$j\", address = \"${nodes[j - 1]}\" },"$'\n'
    pools+="    { name = \"n$j\", nodes = [\"n$j\"] },"$'\n'
    rules+="    { path_prefix = \"/n$j/\", pool = \"n$j\" },"$'\n'
done
cat >"$BATON_CONFIG" <<TOML
# Written by docker/node.sh for node $NODE.
[node]
name = "$name"

[dpdk]
file_prefix = "$FILE_PREFIX"
hugepages = false
memory_mb = 128
mbufs = 8191
mbuf_cache = 64

[lcores]
control = ${CONTROL_LCORE:-0}
workers = [${WORKER_LCORE:-1}]

[wire]
vdev = "net_af_packet0,iface=$WIRE_IFACE"
rx_desc = 512
tx_desc = 512

[host]
kind = "af-packet"
name = "$HOST_IFACE"
address = "$cidr"

[poll]
idle = "sleep"
idle_sleep_max_us = 500

[stats]
socket = "$BATON_RUN/baton.sock"

[metrics]
listen = "$address:9100"

[cluster]
psk_file = "$key_file"
$( [[ -n ${HANDOFF_NET:-} ]] && echo "handoff_net = \"$HANDOFF_NET\"")
heartbeat_ms = 200
suspect_after_ms = 600
dead_after_ms = 3000
peers = [
$peers]

[handoff]
services = [{ port = 80, kind = "http" }]
pools = [
$pools]
rules = [
$rules]
TOML
"$BATON" check --config "$BATON_CONFIG" >/dev/null

# --- demo content: /nI/ only on node I -----------------------------------
own=$WWW_ROOT/$name
mkdir -p "$own"
echo "$name" >"$WWW_ROOT/node.txt"
echo "<h1>Baton demo: node $NODE</h1>" >"$WWW_ROOT/index.html"
echo "$name content" >"$own/whoami.txt"
[[ -f $own/1k.bin ]] || head -c 1024 /dev/urandom >"$own/1k.bin"
[[ -f $own/1m.bin ]] || head -c $((1024 * 1024)) /dev/urandom >"$own/1m.bin"
[[ -f $own/${CONTENT_MB}m.bin ]] || head -c $((CONTENT_MB * 1024 * 1024)) /dev/urandom >"$own/${CONTENT_MB}m.bin"
(cd "$own" && sha256sum ./*.bin | sed 's|  \./|  |' >sha256.txt)

# --- nginx -----------------------------------------------------------------
cat >"$BATON_RUN/nginx.conf" <<NGINX
user root;
daemon on;
worker_processes 1;
pid $BATON_RUN/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path $BATON_RUN/nginx-body;
    proxy_temp_path $BATON_RUN/nginx-proxy;
    fastcgi_temp_path $BATON_RUN/nginx-fastcgi;
    uwsgi_temp_path $BATON_RUN/nginx-uwsgi;
    scgi_temp_path $BATON_RUN/nginx-scgi;
    server {
        listen 80 reuseport;
        root $WWW_ROOT;
    }
}
NGINX

# --- eth0 becomes the wire port, ignored by the kernel ---------------------
# (as tests/testbed/netns.sh does with wire0): no address, no ARP, no IPv6,
# an nftables ingress drop; the af_packet PMD still sees every frame. No
# offloads: af_packet must send and receive finished, MTU-sized frames.
# The host port Baton creates carries IPv4 only, like eth0 did.
sysctl -qw net.ipv6.conf.default.disable_ipv6=1 "net.ipv6.conf.$WIRE_IFACE.disable_ipv6=1" ||
    log "cannot disable IPv6 (is the container privileged?)"
ethtool -K "$WIRE_IFACE" rx off tx off tso off gso off gro off >/dev/null 2>&1 ||
    log "cannot turn $WIRE_IFACE's offloads off"
ip addr flush dev "$WIRE_IFACE"
ip link set "$WIRE_IFACE" arp off up
nft -f - <<NFT
table netdev baton_wire
delete table netdev baton_wire
table netdev baton_wire {
    chain ingress {
        type filter hook ingress device "$WIRE_IFACE" priority 0; policy drop;
    }
}
NFT

nginx -c "$BATON_RUN/nginx.conf"
stop_nginx() { [[ -f $BATON_RUN/nginx.pid ]] && kill -QUIT "$(cat "$BATON_RUN/nginx.pid")" 2>/dev/null || true; }

"$BATON" run --config "$BATON_CONFIG" &
baton=$!
trap 'kill -TERM "$baton" 2>/dev/null || true' TERM INT
trap 'kill -HUP "$baton" 2>/dev/null || true' HUP

# The default route follows the address once Baton has put it on the host port.
for _ in $(seq 300); do
    ip -4 -o addr show dev "$HOST_IFACE" 2>/dev/null | grep -q " $address/" && break
    kill -0 "$baton" 2>/dev/null || break
    sleep 0.1
done
if [[ -n $gateway ]] && ip -4 -o addr show dev "$HOST_IFACE" 2>/dev/null | grep -q " $address/"; then
    ip route replace default via "$gateway" dev "$HOST_IFACE"
fi
log "node $NODE: $address on $HOST_IFACE, $WIRE_IFACE is Baton's wire port; content under /$name/"

# `wait` returns early when a trapped signal arrives: wait until Baton is gone.
rc=0
while kill -0 "$baton" 2>/dev/null; do
    wait "$baton" && rc=0 || rc=$?
done
stop_nginx
exit "$rc"
