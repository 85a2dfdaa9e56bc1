"""The `runner` command: `main.py` (the parser and the function commands), `routes.py`
(routes and dead letters), `examples.py` (the example functions `serve --examples` deploys).

May import: everything below it.
"""
