-- wrk script for one workload of bench/peers.py: a random user per request, every answer checked,
-- and requests that never got an answer counted (wrk itself does not count them).
--
-- BENCH_SPEC names a Lua file returning
--   { users = N, duration = seconds, requests = { {weight, method, path, body, headers, expect}, ... } }
-- where "@USER@" in path and body becomes a random number in 1..users and "@N@" a per-thread
-- counter. `expect` is how many times "title" occurs in a correct answer (20 for a 20-task list,
-- 1 for a created task).
--
-- Requests are sent for `duration` seconds; then no new request starts, and wrk's remaining time
-- (its -d minus `duration`) is a grace period in which answers still in flight arrive. What is still
-- unanswered when wrk stops went unanswered for at least that long: it is counted as stalled.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local spec = dofile(os.getenv("BENCH_SPEC"))

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads + 1)
  table.insert(threads, thread)
end

-- Per-thread counters are globals: wrk's thread:get() reads a thread's globals.
sent, answered, in_window, bad_status, bad_body, graphql_errors = 0, 0, 0, 0, 0, 0

local picks, expected = {}, {}
local stop_sending_at = nil
local counter = 0

function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0))
  for _, r in ipairs(spec.requests) do
    for _ = 1, r.weight do
      table.insert(picks, r)
    end
    expected[r.expect] = true
  end
  stop_sending_at = now() + spec.duration
  if thread_number == 1 then
    -- wrk calls the first thread's request() once before the run, to check what it returns.
    sent = -1
  end
end

function delay()
  if now() >= stop_sending_at then
    return 3600 * 1000 -- no new request after the measured window
  end
  return 0
end

function request()
  local r = picks[math.random(#picks)]
  local user = tostring(math.random(spec.users))
  counter = counter + 1
  local path = (r.path:gsub("@USER@", user))
  local body = nil
  if r.body then
    body = (r.body:gsub("@USER@", user):gsub("@N@", tostring(counter)))
  end
  sent = sent + 1
  return wrk.format(r.method, path, r.headers, body)
end

local function count_titles(body)
  local count, position = 0, 1
  while true do
    local found = body:find('"title"', position, true)
    if not found then
      return count
    end
    count = count + 1
    position = found + 7
  end
end

function response(status, headers, body)
  answered = answered + 1
  if now() <= stop_sending_at then
    in_window = in_window + 1
  end
  if status < 200 or status > 299 then
    bad_status = bad_status + 1
  elseif body:find('"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
  elseif not expected[count_titles(body)] then
    bad_body = bad_body + 1
  end
end

function done(summary, latency, requests)
  local totals = { sent = 0, answered = 0, in_window = 0, bad_status = 0, bad_body = 0,
                   graphql_errors = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"sent": %d, "answered": %d, "in_window": %d, "duration": %f, '
      .. '"bad_status": %d, "bad_body": %d, "graphql_errors": %d, "socket_errors": %d, '
      .. '"timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    totals.sent, totals.answered, totals.in_window, spec.duration,
    totals.bad_status, totals.bad_body, totals.graphql_errors,
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
