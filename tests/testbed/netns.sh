#!/usr/bin/env bash
# Baton's network-namespace testbed: a client, a LAN bridge and N cluster
# nodes, each node running nginx behind Baton (DESIGN §6).
#
#   netns.sh up ID NODES BATON WORKDIR   build it, start nginx and Baton everywhere
#   netns.sh down ID WORKDIR             stop everything, delete the namespaces
#   netns.sh stop-baton ID WORKDIR I     stop Baton on node I (SIGTERM)
#   netns.sh start-baton ID WORKDIR I    start it again
#   netns.sh kill-baton ID WORKDIR I     kill Baton on node I (SIGKILL), as a crash would
#
# With HANDOFF=1 in the environment, `up` makes the nodes a cluster: each
# knows the others as peers (control channel on port 7300, a shared key),
# and manages HTTP on port 80 and HTTPS on 443 with rules per node: paths
# under /nI/, and TLS for the name nI.baton.test, are served by node I,
# whichever node the client connected to. Content under /nI/ exists only on
# node I (1k.bin ... 10m.bin; node 2 also has 50m.bin), with its sha256 sums
# in WORKDIR/nI/sha256.txt. Content under /shared/ (0.txt ... 15.txt, each
# naming its node) exists on every node but node 1, and is served by that
# pool, picked by consistent hash. Port 8080 is managed like port 80 but
# has no server behind it: tests start their own. Every node also answers for the cluster VIP
# 198.18.0.50 (on lo, never in ARP); the client reaches it through node 1.
# A connection handed from node J to node I lives in node I's kernel at
# node J's handoff address 198.19.0.(10+J) (Baton puts the peers' on lo),
# never at node I's own: it cannot collide with a direct connection.
# With WORKERS=2, every node runs two worker lcores (two queue pairs).
# With PEER_MACS=0, the peers are given by name and address only: each
# node learns their MACs from the wire.
# Every node's Baton serves Prometheus metrics on its address, port 9100
# (`[metrics]`), reached through the LAN like its web server.
# With HUGEPAGES=1, Baton runs on hugepage memory (reserve some first:
# 64 pages of 2 MiB per node); otherwise on ordinary memory.
# HOST_KIND picks the host port: af-packet (default; the fastest here) or
# tap.
# Idle workers sleep up to IDLE_SLEEP_MAX_US (default 10000), woken early by
# frames on the ports with WAKE=auto (default; packets where every port is
# af_packet) or only by the timer with WAKE=timer.
# With CONTAINERS=1, `up` mimics the containers of docker/compose.yaml
# instead: each node namespace gets a veth eth0 on the bridge carrying the
# node's address and a default route to the bridge's 198.18.0.1, as Docker
# gives a container, and runs docker/node.sh with the environment the
# compose file gives that node (its 172.30./172.31. addresses translated to
# 198.18./198.19.), paths pointed into WORKDIR: node.sh writes the Baton
# config (WORKDIR/nI.toml), the content (/nI/ on node I, sums in
# WORKDIR/nI/www/nI/sha256.txt), takes eth0 as the wire port and starts
# nginx and Baton. Its output goes to WORKDIR/nI.log; `down` stops it.
#
# Namespaces: ID-lan (bridge br0), ID-client (c0, 198.18.0.100/24) and
# ID-nI (I = 1..N). In node I, Baton's wire port is the veth wire0, which the
# kernel ignores (no address, arp off, no IPv6, nftables ingress drop; the
# af_packet PMD still sees every frame). Baton's host port is baton0,
# carrying 198.18.0.(10+I)/24, where nginx listens: the kernel's end of a
# veth pair whose other end (baton0-dp) Baton reads with af_packet, or,
# with HOST_KIND=tap, a TAP.
set -euo pipefail

CLIENT_IP=198.18.0.100
VIP=198.18.0.50
# Where each node's kernel takes connections handed to it: node I's
# handoff address is 198.19.0.(10+I), on the other nodes' lo.
HANDOFF_NET=198.19.0.0/24
# Every node serves Prometheus metrics at http://198.18.0.(10+I):9100/metrics.
METRICS_PORT=9100
node_ip() { echo "198.18.0.$((10 + $1))"; }
node_mac() { printf '02:ba:70:00:00:%02x' "$1"; }
ns_nodes() { ip netns list | awk '{print $1}' | grep -E "^$1-n[0-9]+$" || true; }

log() { echo "testbed: $*" >&2; }
die() { log "$*"; exit 1; }

# No offloads anywhere: af_packet must see finished, MTU-sized frames with
# real checksums, as a NIC would put them on the wire.
no_offloads() { # NS DEV
    ip netns exec "$1" ethtool -K "$2" rx off tx off tso off gso off gro off >/dev/null 2>&1 || true
}

make_content() { # DIR I
    local www=$1/www
    mkdir -p "$www"
    echo "node$2" >"$www/node.txt"
    echo "<h1>Baton testbed: node $2</h1>" >"$www/index.html"
    head -c $((4 * 1024 * 1024)) /dev/urandom >"$www/big.bin"
    sha256sum "$www/big.bin" | awk '{print $1}' >"$1/big.sha256"
    if [[ ${HANDOFF:-0} == 1 ]]; then
        local own=$www/n$2
        mkdir -p "$own"
        echo "n$2 content" >"$own/whoami.txt"
        head -c 1024 /dev/urandom >"$own/1k.bin"
        head -c $((64 * 1024)) /dev/urandom >"$own/64k.bin"
        head -c $((1024 * 1024)) /dev/urandom >"$own/1m.bin"
        head -c $((10 * 1024 * 1024)) /dev/urandom >"$own/10m.bin"
        (($2 == 2)) && head -c $((50 * 1024 * 1024)) /dev/urandom >"$own/50m.bin"
        if (($2 > 1)); then
            mkdir -p "$www/shared"
            for k in $(seq 0 15); do echo "shared $k from n$2" >"$www/shared/$k.txt"; done
        fi
        (cd "$www" && sha256sum "n$2"/*.bin >"$1/sha256.txt")
    fi
}

write_nginx_conf() { # DIR WORKDIR
    local d=$1 w=$2
    mkdir -p "$d/nginx-tmp"
    cat >"$d/nginx.conf" <<NGINX
user root;
daemon on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path $d/nginx-tmp/body;
    proxy_temp_path $d/nginx-tmp/proxy;
    fastcgi_temp_path $d/nginx-tmp/fastcgi;
    uwsgi_temp_path $d/nginx-tmp/uwsgi;
    scgi_temp_path $d/nginx-tmp/scgi;
    server {
        listen 80 reuseport;
        root $d/www;
    }
$(if [[ ${HANDOFF:-0} == 1 ]]; then cat <<TLS
    server {
        listen 443 ssl reuseport;
        ssl_certificate $w/tls.crt;
        ssl_certificate_key $w/tls.key;
        root $d/www;
    }
TLS
fi)
}
NGINX
}

write_baton_conf() { # ID WORKDIR I
    local id=$1 w=$2 i=$3
    cat >"$w/n$i.toml" <<TOML
# Generated by tests/testbed/netns.sh for node $i of testbed $id.
[node]
name = "n$i"

[dpdk]
file_prefix = "baton-$id-n$i"
hugepages = $( [[ ${HUGEPAGES:-0} == 1 ]] && echo true || echo false)
memory_mb = 128
mbufs = 8191
mbuf_cache = 64

[lcores]
control = 0
$(if [[ ${WORKERS:-1} == 2 ]]; then
    echo "workers = [1, 2]"
    echo "cpus = [1, 0]  # two workers on a two-core machine"
else
    echo "workers = [1]"
fi)

[wire]
vdev = "net_af_packet0,iface=wire0$( [[ ${WORKERS:-1} == 2 ]] && echo ",qpairs=2")"
rx_desc = 512
tx_desc = 512

[host]
kind = "${HOST_KIND:-af-packet}"
name = "baton0"
address = "$(node_ip "$i")/24"

[poll]
idle = "sleep"
idle_sleep_max_us = ${IDLE_SLEEP_MAX_US:-10000}
wake = "${WAKE:-auto}"

[stats]
socket = "$w/n$i.sock"

[metrics]
listen = "$(node_ip "$i"):$METRICS_PORT"
TOML
    [[ ${HANDOFF:-0} == 1 ]] || return 0
    local n=$4 peers="" pools="" rules="" shared="" j
    for j in $(seq "$n"); do
        ((j == 1)) || shared+="\"n$j\", "
        local mac=", mac = \"$(node_mac "$j")\""
        [[ ${PEER_MACS:-1} == 0 ]] && mac=""
        ((j == i)) || peers+="    { name = \"n$j\", address = \"$(node_ip "$j")\"$mac },"$'\n'
        pools+="    { name = \"n$j\", nodes = [\"n$j\"] },"$'\n'
        rules+="    { path_prefix = \"/n$j/\", pool = \"n$j\" },"$'\n'
        rules+="    { sni = \"n$j.baton.test\", pool = \"n$j\" },"$'\n'
    done
    cat >>"$w/n$i.toml" <<TOML

[cluster]
psk_file = "$w/cluster.key"
vip = "$VIP"
handoff_net = "$HANDOFF_NET"
heartbeat_ms = 200
suspect_after_ms = 600
dead_after_ms = 3000
peers = [
$peers]

[handoff]
services = [
    { port = 80, kind = "http" },
    { port = 443, kind = "tls" },
    { port = 8080, kind = "http" },
]
linger_ms = 1000
pools = [
$pools$( ((n > 1)) && echo "    { name = \"shared\", nodes = [${shared%, }], strategy = \"consistent-hash\" },")
]
rules = [
$rules$( ((n > 1)) && echo "    { path_prefix = \"/shared/\", pool = \"shared\" },")
]
TOML
}

# The environment docker/compose.yaml gives service nI, one KEY=VALUE a
# line, its addresses translated into 198.18.0.0/15; then ADDRESS= (the
# service's ipv4_address) and GATEWAY= (the network's).
compose_env() { # I
    python3 - "$(dirname "${BASH_SOURCE[0]}")/../../docker/compose.yaml" "$1" <<'PY'
import re, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
service = compose["services"]["n" + sys.argv[2]]
net = compose["networks"]["lan"]["ipam"]["config"][0]
def tr(v):
    return re.sub(r"\b172\.3([01])\.", lambda m: "198.1%d." % (8 + int(m.group(1))), str(v))
for k, v in service["environment"].items():
    print(f"{k}={tr(v)}")
print("ADDRESS=" + tr(service["networks"]["lan"]["ipv4_address"]))
print("GATEWAY=" + tr(net["gateway"]))
PY
}

container_node() { # ID WORKDIR I: the namespace as Docker makes a container, then node.sh
    local id=$1 w=$2 i=$3 ns="$1-n$3" d="$2/n$3"
    local env=() line address="" gateway=""
    while IFS= read -r line; do
        case $line in
            ADDRESS=*) address=${line#ADDRESS=} ;;
            GATEWAY=*) gateway=${line#GATEWAY=} ;;
            *) env+=("$line") ;;
        esac
    done < <(compose_env "$i")
    [[ $address == "$(node_ip "$i")" ]] || die "compose.yaml gives n$i $address, the testbed $(node_ip "$i")"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add eth0 netns "$ns" type veth peer name "ln$i" netns "$1-lan"
    ip -n "$ns" link set eth0 address "$(node_mac "$i")"
    ip -n "$ns" addr add "$address/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add default via "$gateway"
    ip -n "$1-lan" link set "ln$i" master br0 up
    mkdir -p "$d"
    ip netns exec "$ns" env "${env[@]}" \
        BATON="$(cat "$w/baton.path")" BATON_ETC="$d/etc" BATON_CONFIG="$w/n$i.toml" \
        BATON_RUN="$d/run" WWW_ROOT="$d/www" FILE_PREFIX="baton-$id-n$i" \
        bash "$(dirname "${BASH_SOURCE[0]}")/../../docker/node.sh" >>"$w/n$i.log" 2>&1 &
    echo $! >"$w/n$i.pid"
    wait_host_port "$ns" "$w" "$i"
}

wait_host_port() { # NS WORKDIR I: until Baton's host port carries the node's address
    local ns=$1 w=$2 i=$3 deadline=$((SECONDS + 30))
    until ip -n "$ns" -4 addr show dev baton0 2>/dev/null | grep -q "$(node_ip "$i")/"; do
        if ! kill -0 "$(cat "$w/n$i.pid")" 2>/dev/null; then
            tail -n 20 "$w/n$i.log" >&2
            die "Baton on node $i exited during start-up (log: $w/n$i.log)"
        fi
        ((SECONDS < deadline)) || die "Baton on node $i not up after 30 s (log: $w/n$i.log)"
        sleep 0.2
    done
}

start_baton() { # ID WORKDIR I
    local id=$1 w=$2 i=$3 ns="$1-n$3"
    local baton
    baton=$(cat "$w/baton.path")
    ip netns exec "$ns" "$baton" run --config "$w/n$i.toml" >>"$w/n$i.log" 2>&1 &
    echo $! >"$w/n$i.pid"
    # Ready when the host port carries the node's address.
    wait_host_port "$ns" "$w" "$i"
}

wait_peers_up() { # WORKDIR NODES: until every node sees every peer up
    local w=$1 n=$2 i baton deadline=$((SECONDS + 30))
    baton=$(cat "$w/baton.path")
    for i in $(seq "$n"); do
        until "$baton" stats --json --config "$w/n$i.toml" 2>/dev/null |
            python3 -c 'import json,sys; p=json.load(sys.stdin).get("peers",{}); sys.exit(0 if p and all(p.values()) else 1)'; do
            ((SECONDS < deadline)) || die "node $i does not see all its peers up after 30 s (log: $w/n$i.log)"
            sleep 0.2
        done
    done
}

stop_baton() { # WORKDIR I
    local pidfile="$1/n$2.pid" pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

kill_baton() { # WORKDIR I
    local pidfile="$1/n$2.pid" pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$pidfile"
}

lan_and_client() { # ID: the LAN bridge and the client on it
    local lan="$1-lan" client="$1-client"
    ip netns add "$lan"
    ip -n "$lan" link set lo up
    ip -n "$lan" link add br0 type bridge
    ip -n "$lan" link set br0 up
    # The LAN is a switch: where br_netfilter is loaded, bridged frames would
    # go through this namespace's iptables hooks too, a cost charged to
    # whichever process sent them (a node's worker, HAProxy, the client).
    for f in iptables ip6tables arptables; do
        ip netns exec "$lan" sysctl -qw "net.bridge.bridge-nf-call-$f=0" 2>/dev/null || true
    done

    ip netns add "$client"
    ip -n "$client" link set lo up
    ip link add c0 netns "$client" type veth peer name lc netns "$lan"
    ip -n "$client" link set c0 address 02:ba:70:00:00:64
    ip -n "$client" addr add "$CLIENT_IP/24" dev c0
    ip -n "$client" link set c0 up
    ip -n "$lan" link set lc master br0 up
    no_offloads "$client" c0
    no_offloads "$lan" lc
}

containers_up() { # ID NODES WORKDIR: the compose cluster (CONTAINERS=1)
    local id=$1 n=$2 w=$3 i
    lan_and_client "$id"
    # The bridge is the containers' gateway, as Docker's is.
    ip -n "$id-lan" addr add 198.18.0.1/24 dev br0
    for i in $(seq "$n"); do
        container_node "$id" "$w" "$i"
    done
    wait_peers_up "$w" "$n"
    log "up: $n container-like node(s) running docker/node.sh; client $CLIENT_IP"
}

up() { # ID NODES BATON WORKDIR
    local id=$1 n=$2 baton=$3 w=$4
    [[ $(id -u) == 0 ]] || die "needs root (network namespaces)"
    [[ -x $baton ]] || die "no Baton binary at $baton"
    mkdir -p "$w"
    readlink -f "$baton" >"$w/baton.path"
    if [[ ${CONTAINERS:-0} == 1 ]]; then
        containers_up "$id" "$n" "$w"
        return
    fi
    if [[ ${HANDOFF:-0} == 1 ]]; then
        head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$w/cluster.key"
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=baton.test \
            -addext "subjectAltName=DNS:*.baton.test" \
            -keyout "$w/tls.key" -out "$w/tls.crt" 2>/dev/null
    fi
    lan_and_client "$id"
    local lan="$id-lan" client="$id-client"

    for i in $(seq "$n"); do
        local ns="$id-n$i" d="$w/n$i"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # The host port Baton creates should carry IPv4 only, like the node's NIC.
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
        if [[ ${HANDOFF:-0} == 1 ]]; then
            # The VIP: every node's kernel owns it, none answers ARP for it.
            ip -n "$ns" addr add "$VIP/32" dev lo
            ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
        fi
        ip link add wire0 netns "$ns" type veth peer name "ln$i" netns "$lan"
        ip -n "$ns" link set wire0 address "$(node_mac "$i")"
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.wire0.disable_ipv6=1
        ip -n "$ns" link set wire0 arp off up
        ip -n "$lan" link set "ln$i" master br0 up
        no_offloads "$ns" wire0
        no_offloads "$lan" "ln$i"
        ip netns exec "$ns" nft -f - <<NFT
table netdev baton_wire {
    chain ingress {
        type filter hook ingress device "wire0" priority 0; policy drop;
    }
}
NFT
        make_content "$d" "$i"
        write_nginx_conf "$d" "$w"
        ip netns exec "$ns" nginx -c "$d/nginx.conf"
        write_baton_conf "$id" "$w" "$i" "$n"
    done
    # Every node's config names all the others, so start them once all exist.
    for i in $(seq "$n"); do
        start_baton "$id" "$w" "$i"
    done
    [[ ${HANDOFF:-0} == 1 ]] && wait_peers_up "$w" "$n"
    if [[ ${HANDOFF:-0} == 1 ]]; then
        ip -n "$client" neigh replace "$VIP" lladdr "$(node_mac 1)" dev c0 nud permanent
    fi
    log "up: $n node(s); client $CLIENT_IP; nodes $(for i in $(seq "$n"); do printf '%s ' "$(node_ip "$i")"; done)"
}

down() { # ID WORKDIR
    local id=$1 w=${2:-}
    if [[ -n $w ]]; then
        for pidfile in "$w"/n*.pid; do
            [[ -f $pidfile ]] || continue
            local i=${pidfile##*/n}
            stop_baton "$w" "${i%.pid}"
        done
    fi
    for ns in $(ns_nodes "$id") "$id-client" "$id-lan"; do
        ip netns list | awk '{print $1}' | grep -qx "$ns" || continue
        # Whatever still runs in the namespace (nginx, a stuck Baton).
        local pids
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -n $pids ]] && kill -KILL $pids 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf /var/run/dpdk/baton-"$id"-* 2>/dev/null || true
}

cmd=${1:-}
shift || true
case $cmd in
    up) [[ $# == 4 ]] || die "usage: $0 up ID NODES BATON WORKDIR"
        # A failed build leaves nothing behind.
        trap 'rc=$?; ((rc == 0)) || down "$1" "$4"' EXIT
        up "$@" ;;
    down) [[ $# -ge 1 ]] || die "usage: $0 down ID [WORKDIR]"; down "$@" ;;
    stop-baton) [[ $# == 3 ]] || die "usage: $0 stop-baton ID WORKDIR I"; stop_baton "$2" "$3" ;;
    start-baton) [[ $# == 3 ]] || die "usage: $0 start-baton ID WORKDIR I"; start_baton "$@" ;;
    kill-baton) [[ $# == 3 ]] || die "usage: $0 kill-baton ID WORKDIR I"; kill_baton "$2" "$3" ;;
    *) die "usage: $0 up|down|stop-baton|start-baton|kill-baton ... (see the comment at the top)" ;;
esac
