"""The `runner` command, one module per command group: main.py (the parser and `main`),
client.py (what the client commands share: --address, the gRPC channel, exit statuses, error
printing), serve.py, functions.py (deploy, invoke, list, get, delete, publish, logs), routes.py,
dead_letters.py (dlq), doctor.py, and examples.py (the example functions `serve --examples`
deploys).

May import: everything below it.
"""
