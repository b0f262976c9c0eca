-- wrk script of the item store benchmark (benchmarks/store.sh): one operation per run, the same requests in the same
-- order against edgeproxy and dynalite (the random keys come from a fixed seed).
--
--   wrk -t1 -cN -dS -s ops.lua http://127.0.0.1:PORT/ -- OP ITEMS PARTS PAYLOAD [check]
--
-- OP: GetItem (a random key of the ITEMS loaded), PutItem (a random key of those, replaced by an item of the same
-- shape: about 200 bytes), Query (a random partition of the PARTS loaded, Limit 10), UpdateItem (ADD 1 to the counter
-- of a random key), Rest (GET /rest/items/KEY, a random key; the URL's path is the REST route's). The items are those
-- of load.mjs. With "check", every answer is looked at: the run prints how many were good and bad, and the first bad
-- one, on a line "CHECK ok=N bad=N first_bad=..." (slower; for the short probe before measuring, not for a measured
-- run).

local op, items, parts, payload, prefix
local headers = {}
local reqs, nreqs = {}, 0

local function key(i)
    return string.format("k%06d", i)
end

-- The request of key (or partition) i. All of them are formatted once, in init(): request() only picks one, so that
-- the client spends as little as it can per request (wrk runs on one core and must outrun the faster server).
local function format(i)
    if op == "GetItem" then
        return wrk.format("POST", prefix, headers, '{"TableName":"items","Key":{"id":{"S":"' .. key(i) .. '"}}}')
    elseif op == "PutItem" then
        return wrk.format("POST", prefix, headers,
            '{"TableName":"items","Item":{"id":{"S":"' .. key(i) .. '"},"name":{"S":"item ' .. i .. '"},"n":{"N":"'
            .. i .. '"},"count":{"N":"0"},"payload":{"S":"' .. payload .. '"}}}')
    elseif op == "Query" then
        return wrk.format("POST", prefix, headers,
            '{"TableName":"parts","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{":p":{"S":"'
            .. string.format("p%05d", i) .. '"}},"Limit":10}')
    elseif op == "UpdateItem" then
        return wrk.format("POST", prefix, headers,
            '{"TableName":"items","Key":{"id":{"S":"' .. key(i) .. '"}},"UpdateExpression":"ADD #c :one",'
            .. '"ExpressionAttributeNames":{"#c":"count"},"ExpressionAttributeValues":{":one":{"N":"1"}}}')
    elseif op == "Rest" then
        return wrk.format("GET", prefix .. "items/" .. key(i), headers)
    end
    error("unknown operation " .. tostring(op))
end

function init(args)
    op = args[1]
    items = tonumber(args[2])
    parts = tonumber(args[3])
    payload = string.rep("x", tonumber(args[4]))
    -- wrk parses the answers for Lua only when response() exists, which slows the client: it is defined for check runs
    -- only, here (wrk looks for it after init)
    check_mode = args[5] == "check"
    if check_mode then response = checker end
    math.randomseed(20250101)
    prefix = wrk.path
    if string.sub(prefix, -1) ~= "/" then prefix = prefix .. "/" end
    if op ~= "Rest" then
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["X-Amz-Target"] = "DynamoDB_20120810." .. op
        headers["X-Amz-Date"] = "20250101T000000Z"
        headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDBENCHEXAMPLE/20250101/us-east-1/dynamodb/aws4_request, "
            .. "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
            .. "Signature=0000000000000000000000000000000000000000000000000000000000000000"
    end
    nreqs = (op == "Query") and parts or items
    for i = 0, nreqs - 1 do reqs[i + 1] = format(i) end
end

function request()
    return reqs[math.random(1, nreqs)]
end

-- What a good answer looks like, per operation (check runs only).
local function good(status, body)
    if status ~= 200 then return false end
    if op == "GetItem" then return string.find(body, '"Item"%s*:%s*{') ~= nil end
    if op == "Query" then return string.find(body, '"Count"%s*:%s*10[^%d]') ~= nil end
    if op == "Rest" then return string.find(body, '"id"%s*:%s*"k%d') ~= nil end
    return true
end

-- The check counters are globals: done() runs in the main Lua state and reads them with thread:get().
check_ok, check_bad, check_first = 0, 0, ""

function checker(status, hdrs, body)
    if good(status, body) then
        check_ok = check_ok + 1
    else
        check_bad = check_bad + 1
        if check_first == "" then check_first = status .. " " .. string.sub(body or "", 1, 300) end
    end
end

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

function done(summary, latency, requests)
    for _, t in ipairs(threads) do
        if t:get("check_mode") then
            print(string.format("CHECK ok=%d bad=%d first_bad=%s", t:get("check_ok"), t:get("check_bad"), t:get("check_first")))
        end
    end
end
