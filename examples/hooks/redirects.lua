-- A request hook that answers redirects kept in the item store (edge.store): one item per path in the table
-- `redirects` ({path = "/old", status = 301, location = "/new"}), written with the DynamoDB API or from Lua, e.g.
--   edge.store.put("redirects", {path = "/old", status = 301, location = "/new"})
-- A path without an item goes on to the route's origin; a store failure is logged and lets the request go on.
function on_request(req)
  local r, err = edge.store.get("redirects", { path = req.path }, { projection = "#s, #l", names = { ["#s"] = "status", ["#l"] = "location" } })
  if err then
    edge.log("redirects:", err.code, err.message)
    return
  end
  if r then
    return edge.respond(r.status or 302, { location = r.location, ["cache-control"] = "max-age=300" })
  end
end
