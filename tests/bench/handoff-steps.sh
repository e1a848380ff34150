#!/usr/bin/env bash
# tests/bench/handoff-steps.sh [BIN]: where a handoff's added time to first byte goes.
# tcpdump on the LAN bridge and on node 2's host port during 20 handed-off fetches
# of a 1 KB object; prints the median time of each step (needs root; figures only).
set -u
cd "$(dirname "$0")/../.."; ID=batonsteps; BIN=${1:-${BATON_BIN:-target/release/baton}}; W=$(mktemp -d /tmp/baton-steps.XXXXXX); C=$(mktemp -d /tmp/baton-steps-pcap.XXXXXX)
trap 'bash tests/testbed/netns.sh down $ID $W >/dev/null 2>&1; rm -rf $C $W' EXIT
bash tests/testbed/netns.sh down $ID 2>/dev/null; HANDOFF=1 bash tests/testbed/netns.sh up $ID 2 "$BIN" $W >/dev/null 2>&1
ip netns exec $ID-lan tcpdump -i br0 -nn -U -w $C/br.pcap 2>/dev/null & p1=$!
ip netns exec $ID-n2 tcpdump -i baton0 -nn -U -w $C/n2.pcap 2>/dev/null & p2=$!
sleep 1
for i in $(seq 20); do ip netns exec $ID-client curl -s -o /dev/null http://198.18.0.11/n2/1k.bin; sleep 0.05; done
sleep 0.5; kill $p1 $p2; wait 2>/dev/null

python3 - $C <<'PY'
import subprocess,sys,statistics,re
def rd(f): return [l for l in subprocess.run(["tcpdump","-nn","-tt","-r",f],capture_output=True,text=True).stdout.splitlines()]
br=rd(sys.argv[1]+"/br.pcap"); n2=rd(sys.argv[1]+"/n2.pcap")
def t(l): return float(l.split()[0])
steps={k:[] for k in ["GET on bridge -> Handoff msg on bridge (n1: hold, decision, control lcore, n1 host->wire)","-> Handoff msg on n2 host port (n2 worker wire->host)","-> replay SYN on n2 host port (n2 kernel, control lcore, worker)","-> request injected on n2 host port (replay handshake)","-> response on n2 host port (nginx)","-> response on bridge (n2 worker host->wire)"]}
gets=[l for l in br if "HTTP: GET" in l]
for g in gets:
    tg=t(g); port=re.search(r"198\.18\.0\.100\.(\d+) >",g).group(1)
    try:
        c=next(t(l) for l in br if t(l)>=tg and "> 198.18.0.12.7300" in l and int(l.rsplit("length",1)[1])>100)
        ch=next(t(l) for l in n2 if abs(t(l)-c)<0.01 and t(l)>=c and "> 198.18.0.12.7300" in l and int(l.rsplit("length",1)[1])>100)
        syn=next(t(l) for l in n2 if "100.%s >"%port in l and "[S]" in l)
        inj=next(t(l) for l in n2 if "100.%s >"%port in l and "HTTP: GET" in l)
        rh=next(t(l) for l in n2 if "> 198.18.0.100.%s"%port in l and "HTTP/1.1 200" in l)
        rb=next(t(l) for l in br if "> 198.18.0.100.%s"%port in l and "HTTP/1.1 200" in l)
    except StopIteration: continue
    for k,v in zip(steps,[c-tg,ch-c,syn-ch,inj-syn,rh-inj,rb-rh]): steps[k].append(v*1e6)
for k,v in steps.items(): print("  %6.0f us  %s"%(statistics.median(v),k))
print("  %6.0f us  total, GET to first response byte on the bridge (median of %d)"%(statistics.median([sum(x) for x in zip(*steps.values())]),len(v)))
PY

