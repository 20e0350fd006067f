-- wrk script for bench/api.py. With BENCH_BODY set, every request is a POST of that JSON body;
-- done() prints the run's figures as one JSON line for bench/api.py to read.
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "durationUs": %d, "p50Us": %d, "p99Us": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
