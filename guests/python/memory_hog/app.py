def handler(event, context):
    chunks = []
    mb = int(event.get("mb", 4096)) if isinstance(event, dict) else 4096
    for _ in range(mb):
        chunks.append(bytearray(1024 * 1024))
    return {"allocated_mb": len(chunks)}
