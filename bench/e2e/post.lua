-- wrk script for crowd's benchmarks: POSTs a JSON body of BODY_BYTES bytes and prints one JSON
-- summary line (prefixed with "WRKJSON ") that bench/e2e/run.ts reads.
local n = tonumber(os.getenv("BODY_BYTES") or "150")
local base = '{"event":"page_view","user":"u-1234567890","url":"https://example.com/p","pad":"'
local body = base .. string.rep("x", math.max(0, n - #base - 2)) .. '"}'
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

-- Fixed-rate runs: each connection waits DELAY_MS after every response (wrk has no rate
-- option; bench/e2e/run.ts computes the delay that gives the wanted request rate).
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
if delay_ms > 0 then
  function delay() return delay_ms end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"durationUs":%d,"bytes":%d,"non2xx":%d,"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeouts":%d,' ..
    '"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,"max":%.1f,"mean":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
end
