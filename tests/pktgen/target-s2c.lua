-- Target side, server -> client: the kernel's answers (from the node's own
-- address, port 80) arrive on Baton's host port (pktgen port 1); Baton
-- translates them to come from the origin's address and sends them to the
-- clients out of its wire port (pktgen port 0). Expect translated_packets =
-- frames sent.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local M = dofile(dir .. "common.lua")
M.run {
    name = "target-s2c", tx = 1, rx = 0,
    src_ip = M.ip(M.NODE), src_port = M.port(80),
    dst_ip = M.CLIENTS, dst_port = M.PORTS,
}
