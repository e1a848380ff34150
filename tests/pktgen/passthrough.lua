-- Passthrough (no [handoff]): frames from the wire port (pktgen port 0) go
-- to the host port (pktgen port 1) untouched. Expect wire_rx = host_tx =
-- frames sent.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local M = dofile(dir .. "common.lua")
M.run {
    name = "passthrough", tx = 0, rx = 1,
    src_ip = M.CLIENTS, src_port = M.PORTS,
    dst_ip = M.ip(M.NODE), dst_port = M.port(80),
}
