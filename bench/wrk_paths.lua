-- wrk script for bench/serve.py: cycles through the request paths listed one per line
-- in the file given after "--", and prints one JSON line with the run's figures.
-- An optional second argument paces each connection: it waits that many milliseconds
-- before each request (latency is measured without the wait).
local paths = {}
local next_path = 0
local pause_ms = 0

function init(args)
  local file = assert(io.open(args[1], "r"), "usage: wrk ... -s wrk_paths.lua URL -- PATHS_FILE")
  for line in file:lines() do
    if #line > 0 then paths[#paths + 1] = line end
  end
  file:close()
  pause_ms = tonumber(args[2] or "0")
  -- Threads start at different offsets so they do not ask for the same user in step.
  next_path = math.random(#paths) - 1
end

function delay()
  return pause_ms
end

function request()
  next_path = (next_path % #paths) + 1
  return wrk.format("GET", paths[next_path])
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "req_per_s": %.1f, "errors": %d, ' ..
    '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f}\n',
    summary.requests, seconds, summary.requests / seconds,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000))
end
