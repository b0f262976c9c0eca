-- A response hook (conf/edge.yaml: the route /hello/{name}, hooks: { response: ... }). on_response(req, res) runs on
-- the function's answer before it goes to the client; here it only adds a header. res.headers gives a table of
-- lower-case name -> value (an array of values for a repeated name); what the table holds when the hook ends is sent.
function on_response(req, res)
  local h = res.headers
  h["x-hooked"] = "1"
  res.headers = h
end
