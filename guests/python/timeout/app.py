import time


def handler(event, context):
    print("sleeping past the deadline; remaining ms:", context.get_remaining_time_in_millis())
    time.sleep(event.get("seconds", 60) if isinstance(event, dict) else 60)
    return "never"
