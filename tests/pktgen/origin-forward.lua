-- Origin side: the clients' frames to this node (port 80) belong to
-- connections it handed to its peer; Baton gives them the peer's MAC and
-- sends them back out of the wire port (pktgen port 0 sends and receives).
-- Expect forwarded_to_peer = frames sent, nothing on the host port.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local M = dofile(dir .. "common.lua")
M.run {
    name = "origin-forward", tx = 0, rx = 0,
    src_ip = M.CLIENTS, src_port = M.PORTS,
    dst_ip = M.ip(M.NODE), dst_port = M.port(80),
}
