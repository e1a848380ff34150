#!/usr/bin/env python3
"""`make bench-handoff`: a handoff against the user's alternatives, in one run.

On the 2-node netns testbed (release build, af_packet ports, idle back-off on),
each workload is fetched six ways, in interleaved rounds:

- direct:   from node 2 itself, on its managed port 80 (its Baton reads the
            request, keeps it local and passes the connection on);
- handoff:  from node 1, which hands the connection to node 2;
- haproxy:  from HAProxy on a front-end with no Baton (its own namespace on
            the LAN bridge, a plain veth with the testbed's offload settings),
            switching /n2/ to node 2 by path, keep-alive to the backend;
- behind:   from the same HAProxy configuration running in node 1's
            namespace behind node 1's Baton (port 8081, not managed);
- passthrough: from a second nginx in node 2's namespace on port 8000, which
            Baton does not manage: every packet passes through its ports;
- no Baton: from the same nginx configuration on HAProxy's front-end (port
            8000), serving node 2's files: the same node with no Baton at all,
            the same offload settings.

Workloads: 1 MiB and 1 KiB objects over keep-alive connections (wrk), 1 KiB
with a new connection per request (wrk, Connection: close), and the time to
first byte of a new connection (curl, sequential). For each it prints the
throughput, the front-end's CPU per request (node 1's Baton and web server
for a handoff; the HAProxy process, and node 1's Baton for "behind"), the
whole machine's CPU per request (/proc/stat), and the ratios to HAProxy with
no Baton, to a direct fetch, and of passthrough to no Baton. Figures only: it
never fails on them.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TB = os.path.join(ROOT, "tests", "testbed", "netns.sh")
BATON = os.path.abspath(os.environ.get("BATON_BIN", os.path.join(ROOT, "target", "release", "baton")))
ID = "batonbench"
SECONDS_PER_RUN = int(os.environ.get("SECONDS_PER_RUN", "8"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
SAMPLES = int(os.environ.get("SAMPLES", "200"))
CONNS = int(os.environ.get("CONNS", "16"))
N1, N2, HAP = "198.18.0.11", "198.18.0.12", "198.18.0.30"
TICK = os.sysconf("SC_CLK_TCK")

PLAIN_PORT = 8000
WAYS = {
    "direct": f"http://{N2}",
    "handoff": f"http://{N1}",
    "haproxy": f"http://{HAP}",
    "behind": f"http://{N1}:8081",
    "passthrough": f"http://{N2}:{PLAIN_PORT}",
    "no Baton": f"http://{HAP}:{PLAIN_PORT}",
}
WORKLOADS = [
    ("1 MiB, keep-alive", "/n2/1m.bin", "wrk", []),
    ("1 KiB, keep-alive", "/n2/1k.bin", "wrk", []),
    ("1 KiB, new connection per request", "/n2/1k.bin", "wrk", ["-H", "Connection: close"]),
    ("first byte, new connection", "/n2/1k.bin", "ttfb", []),
]


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, text=True, capture_output=True, **kw)


def ns(name, *cmd, **kw):
    return sh("ip", "netns", "exec", f"{ID}-{name}", *cmd, **kw)


HAPROXY_CFG = """global
    maxconn 4096
    pidfile {pid}
    daemon
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
    http-reuse always
frontend web
    bind {bind}
    use_backend n2 if {{ path_beg /n2/ }}
    default_backend n1
backend n1
    server n1 {n1}:80
backend n2
    server n2 {n2}:80
"""


def start_haproxy(work, where, bind):
    cfg = os.path.join(work, f"haproxy-{where}.cfg")
    pid = os.path.join(work, f"haproxy-{where}.pid")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(pid=pid, bind=bind, n1=N1, n2=N2))
    ns(where, "haproxy", "-f", cfg)
    for _ in range(50):
        if os.path.exists(pid):
            break
        time.sleep(0.1)


NGINX_CFG = """user root;
daemon on;
worker_processes 1;
pid {pid};
error_log {dir}/nginx-{where}-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path {dir}/nginx-{where}-tmp;
    proxy_temp_path {dir}/nginx-{where}-tmp;
    fastcgi_temp_path {dir}/nginx-{where}-tmp;
    uwsgi_temp_path {dir}/nginx-{where}-tmp;
    scgi_temp_path {dir}/nginx-{where}-tmp;
    server {{
        listen {bind};
        root {root};
    }}
}}
"""


def start_plain_nginx(work, where, bind):
    """nginx with the testbed's settings serving node 2's files on `bind`."""
    cfg = os.path.join(work, f"nginx-{where}.conf")
    pid = os.path.join(work, f"nginx-{where}.pid")
    os.makedirs(os.path.join(work, f"nginx-{where}-tmp"), exist_ok=True)
    with open(cfg, "w") as f:
        f.write(NGINX_CFG.format(pid=pid, dir=work, where=where, bind=bind,
                                 root=os.path.join(work, "n2", "www")))
    ns(where, "nginx", "-c", cfg)


def add_haproxy_node():
    """HAProxy's own front-end: a namespace on the LAN bridge, no Baton."""
    ns_name = f"{ID}-hap"
    sh("ip", "netns", "add", ns_name)
    sh("ip", "-n", f"{ID}-lan", "link", "add", "hap0", "type", "veth", "peer", "name", "eth0", "netns", ns_name)
    sh("ip", "-n", f"{ID}-lan", "link", "set", "hap0", "master", "br0", "up")
    sh("ip", "-n", ns_name, "addr", "add", f"{HAP}/24", "dev", "eth0")
    sh("ip", "-n", ns_name, "link", "set", "eth0", "up")
    sh("ip", "-n", ns_name, "link", "set", "lo", "up")
    # The testbed's offload settings: none, on both ends of the veth.
    for where, dev in ((f"{ID}-lan", "hap0"), (ns_name, "eth0")):
        sh("ip", "netns", "exec", where, "ethtool", "-K", dev, "rx", "off", "tx", "off", "tso", "off",
           "gso", "off", "gro", "off", check=False)


def pids_of(name):
    return [int(p) for p in sh("ip", "netns", "pids", f"{ID}-{name}").stdout.split()]


def proc_cpu(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / TICK


def machine_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: all but idle and iowait.
    return (sum(v[:8]) - v[3] - v[4]) / TICK


def front_end(way):
    """The processes whose CPU is the front-end's for `way`."""
    if way == "handoff":
        return pids_of("n1")  # node 1's Baton and nginx
    if way == "haproxy":
        return pids_of("hap")
    if way == "behind":
        return pids_of("n1")  # HAProxy, node 1's Baton (and idle nginx)
    return []


def wrk(url, extra):
    out = ns("client", "wrk", "-t2", f"-c{CONNS}", f"-d{SECONDS_PER_RUN}s", "--timeout", "5s", *extra, url).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    # wrk's units are binary; MB/s here are 10^6 bytes a second.
    mb = float(transfer.group(1)) * {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}[transfer.group(2)] / 1e6
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) if "Non-2xx" in out else 0
    return requests, {"req/s": requests / SECONDS_PER_RUN, "MB/s": mb, "errors": errors}


def ttfb(url):
    times = []
    for _ in range(SAMPLES):
        out = ns("client", "curl", "-s", "-o", "/dev/null", "-w", "%{time_starttransfer}", url, check=False).stdout
        if out:
            times.append(float(out) * 1e3)
    return len(times), {"ms": statistics.median(times) if times else float("nan")}


def measure(way, path, tool, extra):
    fe_pids = front_end(way)
    fe0, m0 = proc_cpu(fe_pids), machine_cpu()
    n, figures = (wrk if tool == "wrk" else lambda u, _: ttfb(u))(WAYS[way] + path, extra)
    fe1, m1 = proc_cpu(fe_pids), machine_cpu()
    figures["fe_ms"] = (fe1 - fe0) / max(n, 1) * 1e3
    figures["machine_ms"] = (m1 - m0) / max(n, 1) * 1e3
    return figures


def main():
    work = tempfile.mkdtemp(prefix="baton-bench.")
    env = dict(os.environ, HANDOFF="1")
    subprocess.run(["bash", TB, "down", ID, work], capture_output=True)
    subprocess.run(["ip", "netns", "del", f"{ID}-hap"], capture_output=True)
    try:
        sh("bash", TB, "up", ID, "2", BATON, work, env=env)
        # The client is a load generator: tens of thousands of connections
        # in a run of new connections leave its ports in TIME_WAIT, and
        # without reuse the next run's connects search for a free port (4-5
        # ms each after one against the node with no Baton).
        ns("client", "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1")
        ns("client", "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535")
        add_haproxy_node()
        start_haproxy(work, "hap", f"{HAP}:80")
        start_haproxy(work, "n1", f"{N1}:8081")
        start_plain_nginx(work, "n2", f"{N2}:{PLAIN_PORT}")
        start_plain_nginx(work, "hap", f"{HAP}:{PLAIN_PORT}")
        run(work)
    finally:
        pidfiles = [f"haproxy-{w}.pid" for w in ("hap", "n1")] + [f"nginx-{w}.pid" for w in ("n2", "hap")]
        for name in pidfiles:
            try:
                with open(os.path.join(work, name)) as f:
                    for pid in f.read().split():
                        subprocess.run(["kill", pid], capture_output=True)
            except FileNotFoundError:
                pass
        subprocess.run(["ip", "netns", "del", f"{ID}-hap"], capture_output=True)
        subprocess.run(["bash", TB, "down", ID, work], capture_output=True)
        subprocess.run(["rm", "-rf", work])


def fmt_range(vals, unit):
    lo, hi = min(vals), max(vals)
    digits = 2 if unit == "ms" else 0 if max(vals) >= 100 else 1
    return f"{lo:.{digits}f}" if abs(hi - lo) < 10 ** -digits else f"{lo:.{digits}f}-{hi:.{digits}f}"


def run(work):
    cpu = sh("lscpu").stdout
    model = re.search(r"Model name:\s+(.*)", cpu)
    print(f"Baton handoff benchmark: {os.cpu_count()} cores, {model.group(1) if model else '?'}")
    print(f"(2-node netns testbed, release build; wrk -c{CONNS} for {SECONDS_PER_RUN} s, "
          f"{SAMPLES} sequential curls for first byte; {ROUNDS} interleaved rounds)")
    results = {}
    for r in range(ROUNDS):
        for name, path, tool, extra in WORKLOADS:
            order = list(WAYS) if r % 2 == 0 else list(reversed(WAYS))
            for way in order:
                results.setdefault((name, way), []).append(measure(way, path, tool, extra))
    print()
    head = f"{'workload':<36}" + "".join(f"{w:>14}" for w in
                                         ("direct", "handoff", "HAProxy", "behind Baton", "passthrough", "no Baton"))
    print(head)
    for name, _, tool, _ in WORKLOADS:
        unit = "MB/s" if name.startswith("1 MiB") else "req/s" if tool == "wrk" else "ms"
        cells = [fmt_range([f[unit] for f in results[(name, w)]], unit) for w in WAYS]
        print(f"{name + ' (' + unit + ')':<36}" + "".join(f"{c:>14}" for c in cells))
    print()
    print("ratios (means of the rounds): handoff ÷ HAProxy with no Baton, and handoff ÷ direct")
    print(f"{'workload':<36}{'throughput':>12}{'front-end CPU':>15}{'machine CPU':>13}{'÷ direct':>10}")
    mean = lambda name, way, k: statistics.mean(f[k] for f in results[(name, way)])
    for name, _, tool, _ in WORKLOADS:
        unit = "MB/s" if name.startswith("1 MiB") else "req/s" if tool == "wrk" else "ms"
        h, p, d = (mean(name, w, unit) for w in ("handoff", "haproxy", "direct"))
        # A ratio to less than one clock tick of CPU would be noise.
        ratio = lambda k: (f"{mean(name, 'handoff', k) / mean(name, 'haproxy', k):.2f}×"
                           if mean(name, "haproxy", k) > 0 else "n/a")
        fe, mc = ratio("fe_ms"), ratio("machine_ms")
        if unit == "ms":
            print(f"{name:<36}{'':>12}{fe:>15}{mc:>13}   a handoff adds {(h - d) * 1000:.0f} µs over direct")
        else:
            print(f"{name:<36}{h / p:>11.2f}×{fe:>15}{mc:>13}{h / d:>9.2f}×")
    print()
    print("passthrough ÷ the same node with no Baton (means of the rounds)")
    for name, _, tool, _ in WORKLOADS:
        unit = "MB/s" if name.startswith("1 MiB") else "req/s" if tool == "wrk" else "ms"
        t, n = (mean(name, w, unit) for w in ("passthrough", "no Baton"))
        m = mean(name, "passthrough", "machine_ms") / max(mean(name, "no Baton", "machine_ms"), 1e-9)
        if unit == "ms":
            print(f"{name:<36}   Baton adds {(t - n) * 1000:.0f} µs to the first byte; machine CPU {m:.2f}×")
        else:
            print(f"{name:<36}{t / n:>11.2f}× throughput; machine CPU per request {m:.2f}×")
    print()
    print("CPU per request, ms (front-end / whole machine; means of the rounds)")
    for name, _, _, _ in WORKLOADS:
        cells = [f"{mean(name, w, 'fe_ms'):.3f}/{mean(name, w, 'machine_ms'):.3f}" for w in WAYS]
        print(f"{name:<36}" + "".join(f"{c:>14}" for c in cells))
    errors = {k: sum(f.get("errors", 0) for f in v) for k, v in results.items()}
    if any(errors.values()):
        print("\nerrors seen by wrk:", {f"{k[0]} / {k[1]}": e for k, e in errors.items() if e})
    stats = sh(BATON, "stats", "--json", "--config", os.path.join(work, "n1.toml")).stdout
    import json
    d = json.loads(stats)
    c = {k: sum(w["counters"][k] for w in d["workers"]) for k in ("handed_off", "fell_back", "forwarded_to_peer")}
    print(f"\nnode 1: handed_off={c['handed_off']} fell_back={c['fell_back']} forwarded_to_peer={c['forwarded_to_peer']}")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench-handoff: needs root (network namespaces)")
    main()
