-- Target side, client -> server: clients' frames to the address they
-- connected to (the origin's, M.PEER) arrive on Baton's wire port (pktgen
-- port 0); Baton translates them to its own address and sends them out of
-- its host port (pktgen port 1). Expect translated_packets = frames sent.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local M = dofile(dir .. "common.lua")
M.run {
    name = "target-c2s", tx = 0, rx = 1,
    src_ip = M.CLIENTS, src_port = M.PORTS,
    dst_ip = M.ip(M.PEER), dst_port = M.port(80),
}
