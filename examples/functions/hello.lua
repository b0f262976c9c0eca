-- A Lua function as an origin (conf/edge.yaml: the route /hello/{name}). It answers as an AWS Lambda handler behind
-- an API Gateway proxy integration: event in, {statusCode, headers, body} out.
function handler(event, context)
  local name = event.pathParameters and event.pathParameters.name or "world"
  edge.log("greeting", name)
  return {
    statusCode = 200,
    headers = { ["content-type"] = "application/json" },
    body = edge.json.encode({ hello = name, stage = event.requestContext.stage, request_id = context.awsRequestId }),
  }
end
