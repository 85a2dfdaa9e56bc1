"""Test guest behind function routes. GET returns the event itself (a bare dict: API Gateway
sends it as 200 JSON); a POSTed JSON body says what to do:
{"return": X} returns X, {"raise": "msg"} raises, {"sleep": s} sleeps s seconds first."""
import base64
import json
import time


def handler(event, context):
    if event["requestContext"]["http"]["method"] != "POST":
        return event
    raw = event.get("body") or "{}"
    if event.get("isBase64Encoded"):
        return {"statusCode": 200, "body": json.dumps({"received_b64": raw})}
    order = json.loads(raw)
    if order.get("sleep"):
        time.sleep(order["sleep"])
    if "raise" in order:
        raise ValueError(order["raise"])
    if "return_b64" in order:
        return base64.b64encode(order["return_b64"].encode()).decode()
    return order.get("return")
