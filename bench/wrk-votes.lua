-- wrk script for bench:votes: every request is a vote from a new anonymous voter.
-- Consecutive requests walk the /24 space first, so no address prefix sees a burst.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  path = args[1]
  body = args[2]
  statuses = {}
end

function request()
  counter = counter + 1
  local c = counter
  local ip = string.format("%d.%d.%d.%d", 11 + tid, c % 256, math.floor(c / 256) % 256, math.floor(c / 65536) % 256)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = ip,
    ["User-Agent"] = "bench-votes",
  }, body)
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
