-- wrk script for bench:votes and bench:scale: every request is a vote from a new anonymous voter.
-- Consecutive requests walk the /24 space first, so no address prefix sees a burst.
--   args: path body [path body ...]  -- several polls: requests take them in turn
--   WRK_HOSTS=host:port,host:port    -- several servers: thread i talks to the (i mod n)-th
local threads = {}
local counter = 0

function setup(thread)
  local hosts = {}
  for h in string.gmatch(os.getenv("WRK_HOSTS") or "", "[^,]+") do table.insert(hosts, h) end
  if #hosts > 0 then
    local host, port = string.match(hosts[(#threads % #hosts) + 1], "^(.+):(%d+)$")
    thread.addr = wrk.lookup(host, port)[1]
  end
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- The request is built by concatenation around the address: wrk.format per request costs
-- the load generator more CPU than the server spends on some votes.
function init(args)
  heads, tails = {}, {}
  for i = 1, #args - 1, 2 do
    local path, body = args[i], args[i + 1]
    table.insert(heads, "POST " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      .. "User-Agent: bench-votes\r\nContent-Length: " .. #body .. "\r\nX-Forwarded-For: " .. (11 + tid) .. ".")
    table.insert(tails, "\r\n\r\n" .. body)
  end
  polls = #heads
  statuses = {}
end

local fmt, floor = string.format, math.floor
function request()
  counter = counter + 1
  local c = counter
  local p = (c % polls) + 1
  return heads[p] .. fmt("%d.%d.%d", c % 256, floor(c / 256) % 256, floor(c / 65536) % 256) .. tails[p]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for code, n in pairs(s) do totals[code] = (totals[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(totals) do table.insert(parts, string.format('"%d":%d', code, n)) end
  io.write(string.format('STATUSES {%s}\n', table.concat(parts, ",")))
  io.write(string.format('LATENCY_US p50=%d p90=%d p99=%d max=%d\n',
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
