"""The HTTP front (`runner serve --http-port`): the Lambda Invoke REST API, the Lambda
management API (`lambda_api/`, every path under a Lambda API date) and API Gateway-style
function routes. Modules: server (lifecycle, sockets), invoke_api, function_routes, apigw
(payload format 2.0), router (route matching), status (the error -> HTTP status table), body.
"""

from runner.service.http.server import HttpFront

__all__ = ["HttpFront"]
