-- The same request shape as wrk-votes.lua, against a server that does nothing.
function init(args)
  path = args[1]
  body = args[2]
end
function request()
  return wrk.format("POST", path, { ["Content-Type"] = "application/json", ["User-Agent"] = "bench-votes" }, body)
end
function done(summary, latency, requests)
  io.write(string.format('LATENCY_US p50=%d p90=%d p99=%d max=%d\n',
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
