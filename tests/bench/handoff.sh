#!/usr/bin/env bash
# `make bench-handoff`: what a handoff costs and what it saves, measured in
# one run on the netns testbed (2 nodes and a client; release build).
#
# - Time to first byte of a 1 KB object from node 2: asked of node 2
#   directly, and asked of node 1, which hands the connection to node 2.
#   The difference is the handoff's added latency.
# - Handoffs per second node 1 sustains: wrk with a new connection per
#   request for node 2's content, beside the same load served locally.
# - Against an L7 proxy: node 1 also runs nginx as a content-switching
#   reverse proxy (port 8080, /n2/ proxied to node 2). A 10 MB object
#   fetched through it and through a handoff: MB/s, and node 1's CPU
#   seconds (every process in its namespace, Baton included) per request.
#
# Prints figures only; never fails on timing.
set -euo pipefail
cd "$(dirname "$0")/../.."

BATON=${BATON_BIN:-target/release/baton}
ID=batonbench
WORK=$(mktemp -d /tmp/baton-bench.XXXXXX)
TB=tests/testbed/netns.sh
SAMPLES=${SAMPLES:-300}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
cleanup() { bash $TB down "$ID" "$WORK"; rm -rf "$WORK"; }
trap cleanup EXIT
bash $TB down "$ID" 2>/dev/null || true
HANDOFF=1 bash $TB up "$ID" 2 "$BATON" "$WORK" 2>/dev/null

N1=198.18.0.11
N2=198.18.0.12
client() { ip netns exec "$ID-client" "$@"; }

# The L7 proxy on node 1, beside its web server.
cat >"$WORK/proxy.conf" <<NGINX
user root;
daemon on;
worker_processes 1;
pid $WORK/proxy.pid;
error_log $WORK/proxy-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    proxy_temp_path $WORK/proxy-tmp;
    client_body_temp_path $WORK/proxy-tmp;
    upstream n2 { server $N2:80; keepalive 32; }
    server {
        listen 8080;
        location /n2/ { proxy_pass http://n2; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
NGINX
mkdir -p "$WORK/proxy-tmp"
ip netns exec "$ID-n1" nginx -c "$WORK/proxy.conf"

ttfb() { # URL: SAMPLES times to first byte, one per line
    for _ in $(seq "$SAMPLES"); do
        client curl -s -o /dev/null -w '%{time_starttransfer}\n' "$1"
    done
}

stats() { # label < samples
    python3 -c '
import statistics, sys
v = sorted(float(x) * 1e6 for x in sys.stdin if x.strip())
p = lambda q: v[min(len(v) - 1, int(q * len(v)))]
print("%s %.0f %.0f %.0f" % (sys.argv[1], statistics.median(v), p(0.9), p(0.99)))' "$1"
}

wrk_rps() { # URL [extra wrk args]: requests/s
    client wrk -t2 -c32 -d"${SECONDS_PER_RUN}s" --timeout 5s "$@" | awk '/Requests\/sec/ {print $2}'
}

ns_cpu() { # NS: CPU seconds used so far by every process in it
    local total=0 pid t
    for pid in $(ip netns pids "$1"); do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

fetch_loop() { # URL COUNT: MB/s over COUNT sequential downloads
    python3 - "$1" "$2" <<'PY'
import subprocess, sys, time
url, count = sys.argv[1], int(sys.argv[2])
start = time.time(); total = 0
for _ in range(count):
    out = subprocess.run(["ip", "netns", "exec", "batonbench-client", "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}", url],
                         capture_output=True, text=True, check=True)
    total += int(out.stdout)
print("%.1f" % (total / (time.time() - start) / 1e6))
PY
}

echo "Baton handoff benchmark: $(nproc) cores, $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')"
echo "(netns testbed: af_packet wire and host ports, or HOST_KIND=tap; release build; idle back-off on)"
echo
echo "time to first byte, 1 KB object, $SAMPLES requests each   median   p90   p99 (µs)"
direct=$(ttfb "http://$N2/n2/1k.bin" | stats "  node 2 directly                      ")
handoff=$(ttfb "http://$N1/n2/1k.bin" | stats "  node 1, handed off to node 2         ")
proxied=$(ttfb "http://$N1:8080/n2/1k.bin" | stats "  node 1's L7 proxy (nginx) to node 2   ")
printf '%s\n%s\n%s\n' "$direct" "$handoff" "$proxied" | awk '{printf "%s %8s %6s %6s\n", substr($0, 1, 40), $(NF-2), $(NF-1), $NF}'
added=$(( $(echo "$handoff" | awk '{print $(NF-2)}') - $(echo "$direct" | awk '{print $(NF-2)}') ))
echo "  added latency of a handoff (median): ${added} µs"
echo
echo "new connections per second, one request each (wrk -c32, ${SECONDS_PER_RUN} s)"
local_rps=$(wrk_rps -H "Connection: close" "http://$N1/n1/1k.bin")
handoff_rps=$(wrk_rps -H "Connection: close" "http://$N1/n2/1k.bin")
proxy_rps=$(wrk_rps -H "Connection: close" "http://$N1:8080/n2/1k.bin")
printf '  served by node 1 locally             %10s /s\n' "$local_rps"
printf '  handed off by node 1 to node 2       %10s /s   (handoffs/s)\n' "$handoff_rps"
printf '  through node 1'"'"'s L7 proxy           %10s /s\n' "$proxy_rps"
echo
echo "10 MB object from node 2 via node 1, 20 downloads: throughput and node 1's CPU"
for how in handoff proxy; do
    case $how in
        handoff) url="http://$N1/n2/10m.bin" ;;
        proxy) url="http://$N1:8080/n2/10m.bin" ;;
    esac
    before=$(ns_cpu "$ID-n1")
    mbps=$(fetch_loop "$url" 20)
    after=$(ns_cpu "$ID-n1")
    ticks=$(getconf CLK_TCK)
    printf '  %-8s %8s MB/s   node 1 CPU %6.3f s per request\n' "$how" "$mbps" \
        "$(python3 -c "print(($after - $before) / $ticks / 20)")"
done
echo
"$BATON" stats --json --config "$WORK/n1.toml" | python3 -c '
import json, sys
d = json.load(sys.stdin)
c = {k: sum(w["counters"][k] for w in d["workers"]) for k in d["workers"][0]["counters"]}
print("node 1 counters: handed_off=%d served_local=%d fell_back=%d forwarded_to_peer=%d" % (
    c["handed_off"], c["served_local"], c["fell_back"], c["forwarded_to_peer"]))'
