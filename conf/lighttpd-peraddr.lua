-- Per-address connection cap for lighttpd in front of Tollgate (mod_magnet,
-- Debian package lighttpd-modules-lua; conf/lighttpd.conf attracts it at the
-- raw URL, once per request, after the request headers arrived).
--
-- lighttpd 1.4.68 dropped mod_evasive (evasive.max-conns-per-ip); this is
-- its replacement: a request from an address that holds more than
-- MAX_CONNS_PER_ADDR connections (counting idle keep-alive ones and ones
-- still sending their headers) is refused with 429, whose JSON body comes
-- from conf/errors/429.html.  It cannot close the connections an address
-- already holds: those are bounded by server.max-read-idle and
-- server.max-keep-alive-idle, and the total by server.max-connections.
-- Raise the number if many legitimate clients share one address (a NAT,
-- a proxy); keep it well below server.max-connections.
local MAX_CONNS_PER_ADDR = 256

local r = lighty.r
local addr = r.req_attr["request.remote-addr"]
local held = 0
for other in lighty.server.irequests() do
  if other.req_attr["request.remote-addr"] == addr then
    held = held + 1
    if held > MAX_CONNS_PER_ADDR then
      return 429
    end
  end
end
