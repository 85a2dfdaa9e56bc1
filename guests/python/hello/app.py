import os

GREETING = os.environ.get("GREETING", "Hello")


def handler(event, context):
    name = (event or {}).get("name", "world") if isinstance(event, dict) else "world"
    print(f"saying hello to {name}")
    return {"message": f"{GREETING}, {name}!", "request_id": context.aws_request_id}
