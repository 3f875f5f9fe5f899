-- wrk script for the distinct-token scenario: every request carries a
-- token drawn at random from TOKENS_FILE (one per line). Each wrk thread
-- loads the file once and formats every request then, so a request costs
-- the load generator one random draw (its Lua work shares the upstream's
-- core); math.random is seeded per thread.
local requests = {}

function init(args)
    local path = os.getenv("TOKENS_FILE")
    for line in io.lines(path) do
        requests[#requests + 1] = wrk.format("GET", wrk.path, { Authorization = "Bearer " .. line })
    end
    math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
    return requests[math.random(#requests)]
end
