"""The `runner` command: `build_parser` assembles the command groups, `main` runs one.

Each group is its own module and adds its subcommands with `add_commands(sub)`: serve.py
(`serve`), functions.py (`deploy invoke list get delete publish logs`), routes.py (`route`),
dead_letters.py (`dlq`), doctor.py (`doctor`). What the client commands share (--address, the
channel, exit statuses, error printing) is client.py's. `runner = "runner.cli.main:main"`.

Exit status: 0 success; 1 the function failed (its error document on stdout); 2 a platform error
(not found, invalid argument, throttled, unreachable server...), message on stderr.
"""

from __future__ import annotations

import argparse
import sys

from runner.cli import (
    dead_letters,
    doctor,
    functions,
    lambda_resources,
    roles,
    routes,
    schedules,
    serve,
    sources,
    topics,
    triggers,
    usage,
    workflows,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="runner", description="A self-hosted, Lambda-style function runner.")
    sub = p.add_subparsers(dest="command", required=True)
    # The order here is the order `runner --help` lists the commands in.
    for group in (serve, functions, lambda_resources, roles, routes, dead_letters, sources,
                  triggers, topics, schedules, workflows, usage, doctor):
        group.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse fills an optional positional (deploy's PATH) at the first positional chunk, so
    # `deploy NAME --env K=V PATH` leaves PATH over; take it here rather than reject it.
    if extra and getattr(args, "command", None) == "deploy" and args.path is None \
            and len(extra) == 1 and not extra[0].startswith("-"):
        args.path, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
