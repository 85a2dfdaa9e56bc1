"""The workflow example (README, docs/workflows.md): validate -> Parallel(charge, reserve) ->
Choice. Three functions from one directory: handlers app.validate, app.charge, app.reserve."""


class InvalidOrder(Exception):
    pass


class PaymentDeclined(Exception):
    pass


def validate(event, context):
    items = event.get("items")
    if not items:
        raise InvalidOrder("an order needs at least one item")
    total = sum(i["price"] * i.get("qty", 1) for i in items)
    return {**event, "total": total}


def charge(event, context):
    if event.get("card") == "0000":
        raise PaymentDeclined(f"card {event['card']} declined")
    return {"charged": event["total"]}


def reserve(event, context):
    return {"reserved": sum(i.get("qty", 1) for i in event["items"])}
