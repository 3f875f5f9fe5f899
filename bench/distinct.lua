-- wrk script for the distinct-token scenario: every request carries a
-- token drawn at random from TOKENS_FILE (one per line). Each wrk thread
-- loads the file once; math.random is seeded per thread.
local tokens = {}

function init(args)
    local path = os.getenv("TOKENS_FILE")
    for line in io.lines(path) do
        tokens[#tokens + 1] = "Bearer " .. line
    end
    math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
    local headers = { Authorization = tokens[math.random(#tokens)] }
    return wrk.format("GET", wrk.path, headers)
end
