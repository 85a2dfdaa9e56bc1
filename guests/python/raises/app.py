class PaymentDeclined(Exception):
    pass


def handler(event, context):
    print("about to fail")
    raise PaymentDeclined(f"card {event.get('card', '?')} declined")
