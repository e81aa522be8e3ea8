-- wrk script of `make bench`'s repeated workload (scenario 6b, tests/src/bench/cachemix.rs):
-- POSTs the bodies in $BENCH_BODIES (one JSON body a line) in the order of $BENCH_SEQUENCE (one
-- body number a line, from 0), starting at position $BENCH_SEQ_OFFSET and going round it, with
-- the extra headers in $BENCH_HEADERS (one "name: value" a line). Prints the figures as one JSON
-- line, as wrk.lua does, plus "sent": how far the sequence went (the driver's next offset).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then headers[k] = v end
  end
  prepared = {}
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    local h = {}
    for k, v in pairs(headers) do h[k] = v end
    prepared[#prepared + 1] = wrk.format("POST", nil, h, line)
  end
  sequence = {}
  for line in io.lines(os.getenv("BENCH_SEQUENCE")) do
    sequence[#sequence + 1] = tonumber(line) + 1
  end
  position = (tonumber(os.getenv("BENCH_SEQ_OFFSET")) or 0) % #sequence
  sent = 0
end

function request()
  local r = prepared[sequence[position + 1]]
  position = (position + 1) % #sequence
  sent = sent + 1
  return r
end

function done(summary, latency, requests)
  local taken = 0
  for _, t in ipairs(threads) do taken = taken + (t:get("sent") or 0) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,' ..
    '"mean_us":%.1f,"max_us":%.1f,"sent":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, taken))
end
