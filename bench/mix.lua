-- Varied availability questions, as patients ask them: a start day in the next eight
-- weeks, a window of 1 to 7 days, 30% of them about one dermatologist. The path prefix
-- (the legacy or the day-grouped shape) and the first day come from the environment.
local path = os.getenv("MIX_PATH") or "/api/v1/availability"
local first = os.getenv("MIX_FIRST_DAY") -- YYYY-MM-DD
local y, m, d = first:match("(%d+)-(%d+)-(%d+)")
local base = os.time({ year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 12 })

local function day(offset)
   return os.date("!%Y-%m-%d", base + offset * 86400)
end

function setup(thread)
   thread:set("seed", math.random(1, 1000000))
end

function init()
   math.randomseed(seed)
end

request = function()
   local start = math.random(0, 55)
   local q = path .. "?treatment=initial-consultation&from=" .. day(start) .. "&to=" .. day(start + math.random(0, 6))
   if math.random() < 0.3 then
      q = q .. "&dermatologist=" .. math.random(1, 20)
   end
   return wrk.format("GET", q, { ["Accept-Encoding"] = "gzip" })
end
