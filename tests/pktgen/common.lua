-- Shared by the per-path Pktgen-DPDK scripts (pktgen built with
-- -Denable_lua=true). Pktgen port 0 faces Baton's wire port, port 1 its host
-- port. run{} sends one stream of 64-byte TCP frames in range mode, so that
-- every frame belongs to one of the flows Baton preloaded, for DURATION
-- seconds (environment, default 10), prints lines starting with "RESULT"
-- and quits.

local M = {}

-- Addresses shared with the Baton configs in this directory.
M.WIRE_MAC = "02:00:c6:12:00:0b"   -- Baton's wire port (host port takes it too)
M.NODE = "198.18.0.11"             -- the node under test: host.address
M.PEER = "198.18.0.12"             -- its one peer
-- The preloaded client grid: 3 clients x 50000 ports (10000-59999). Both
-- fields step by one per frame; 3 and 50000 are coprime, so the stream walks
-- all 150000 (client, port) pairs.
M.CLIENTS = { start = "198.19.0.1", min = "198.19.0.1", max = "198.19.0.3", inc = "0.0.0.1" }
M.PORTS = { start = 10000, min = 10000, max = 59999, inc = 1 }

local function fixed(v, zero)
    return { start = v, min = v, max = v, inc = zero }
end
M.ip = function(a) return fixed(a, "0.0.0.0") end
M.port = function(p) return fixed(p, 0) end

local function set(field, port, v)
    for _, k in ipairs({ "start", "min", "max", "inc" }) do
        field(port, k, v[k])
    end
end

local function links_up()
    for _ = 1, 100 do
        local s = pktgen.linkState("all")
        if s[0] and s[0]:find("UP") and s[1] and s[1]:find("UP") then
            return true
        end
        pktgen.delay(100)
    end
    return false
end

-- t: name, tx and rx (pktgen ports), src_ip, dst_ip, src_port, dst_port.
function M.run(t)
    local duration = tonumber(os.getenv("DURATION") or "10")
    local tx, rx = tostring(t.tx), tostring(t.rx)
    pktgen.screen("off")
    if not links_up() then
        print("RESULT " .. t.name .. ": a pktgen port is down (is Baton up, with memif servers on both sockets?)")
        pktgen.quit()
        return
    end

    local r = pktgen.range
    pktgen.set_range(tx, "on")
    r.dst_mac(tx, "start", M.WIRE_MAC)
    r.ip_proto(tx, "tcp")
    set(r.src_ip, tx, t.src_ip)
    set(r.dst_ip, tx, t.dst_ip)
    set(r.src_port, tx, t.src_port)
    set(r.dst_port, tx, t.dst_port)
    set(r.pkt_size, tx, fixed(64, 0))

    pktgen.clr()
    pktgen.start(tx)
    pktgen.delay(1000) -- warm-up, not counted in the rates
    local sum_tx, sum_rx = 0, 0
    for _ = 1, duration do
        pktgen.delay(1000)
        local rate = pktgen.portStats("all", "rate")
        sum_tx = sum_tx + rate[t.tx].pkts_tx
        sum_rx = sum_rx + rate[t.rx].pkts_rx
    end
    pktgen.stop(tx)
    pktgen.delay(1500) -- let the last frames arrive and the counters refresh

    print(string.format("RESULT %s: %d s, tx port %d %.3f Mpps, rx port %d %.3f Mpps",
        t.name, duration, t.tx, sum_tx / duration / 1e6, t.rx, sum_rx / duration / 1e6))
    local total = pktgen.portStats("all", "port")
    for p = 0, 1 do
        local s = total[p]
        print(string.format("RESULT port %d totals: tx %d rx %d ierrors %d oerrors %d imissed %d rx_nombuf %d",
            p, s.opackets, s.ipackets, s.ierrors, s.oerrors, s.imissed, s.rx_nombuf))
    end
    pktgen.quit()
end

return M
