-- wrk script for scripts/bench.sh: POST /api/v1/auth/login with the right password.
--
-- Environment (set by bench.sh):
--   BENCH_LOGIN_USER      username (default "admin")
--   BENCH_LOGIN_PASSWORD  password (required; must not need JSON escaping)
--   BENCH_LOGIN_DEVICE    device_id sent with each request (default "bench-login")
--
-- Every thread counts the HTTP status codes it sees and keeps the first non-2xx body, and
-- done() prints them as lines "status <code> <count>" and "first_non2xx <code> <body>",
-- so bench.sh can tell a 429 (throttled) from a 500 (server error).

local user = os.getenv("BENCH_LOGIN_USER") or "admin"
local password = os.getenv("BENCH_LOGIN_PASSWORD")
local device = os.getenv("BENCH_LOGIN_DEVICE") or "bench-login"
if password == nil or password == "" then
  io.stderr:write("bench_login.lua: BENCH_LOGIN_PASSWORD is not set\n")
  os.exit(2)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"username":"%s","password":"%s","device_id":"%s"}', user, password, device)

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  first_bad = ""
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (status < 200 or status > 299) and first_bad == "" then
    first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300)
  end
end

function done(summary, latency, requests)
  local total = {}
  local bad = ""
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s ~= nil then
      for code, n in pairs(s) do
        total[code] = (total[code] or 0) + n
      end
    end
    local b = t:get("first_bad")
    if bad == "" and b ~= nil and b ~= "" then
      bad = b
    end
  end
  for code, n in pairs(total) do
    io.write(string.format("status %d %d\n", code, n))
  end
  if bad ~= "" then
    io.write("first_non2xx " .. string.gsub(bad, "\n", " ") .. "\n")
  end
end
