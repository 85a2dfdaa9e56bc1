"""`runner usage [--since 7d]`: requests and GB-seconds per function per day, as Lambda prices
them (a client of the Usage gRPC service, proto/metrics.proto; docs/observability.md)."""

from __future__ import annotations

import json
import re

from runner.cli.client import add_address_argument, with_stubs
from runner.errors import InvalidParameter

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str) -> int:
    """`30d`, `12h`, `90m`, `3600` (seconds) -> seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not m:
        raise InvalidParameter("--since", f"{text!r} is not a duration; write e.g. 7d, 24h, 90m "
                               "or a number of seconds")
    return int(m.group(1)) * _UNITS[m.group(2) or "s"]


def _usage(args, stubs) -> int:
    from runner.service.proto import metrics_pb2 as mpb
    from runner.service.proto import metrics_pb2_grpc as mpb_grpc

    rows = mpb_grpc.UsageStub(stubs.channel).GetUsage(
        mpb.UsageRequest(since_s=parse_since(args.since))).rows
    if args.json:
        print(json.dumps([{"day": r.day, "function": r.function, "requests": r.requests,
                           "errors": r.errors, "throttles": r.throttles,
                           "gb_seconds": r.gb_seconds,
                           "provisioned_gb_seconds": r.provisioned_gb_seconds} for r in rows],
                         indent=2))
        return 0
    print(f"{'DAY':<10}  {'FUNCTION':<24} {'REQUESTS':>9} {'ERRORS':>7} {'THROTTLES':>9} "
          f"{'GB-SECONDS':>12} {'PROV. GB-S':>12}")
    total_req, total_gb, total_prov = 0, 0.0, 0.0
    for r in rows:
        print(f"{r.day:<10}  {r.function:<24} {r.requests:>9} {r.errors:>7} {r.throttles:>9} "
              f"{r.gb_seconds:>12.4f} {r.provisioned_gb_seconds:>12.4f}")
        total_req += r.requests
        total_gb += r.gb_seconds
        total_prov += r.provisioned_gb_seconds
    print(f"{'total':<10}  {'':<24} {total_req:>9} {'':>7} {'':>9} {total_gb:>12.4f} "
          f"{total_prov:>12.4f}")
    return 0


def add_commands(sub) -> None:
    u = sub.add_parser("usage", help="requests and GB-seconds per function per day")
    add_address_argument(u)
    u.add_argument("--since", default="7d", help="how far back: 7d, 24h, 90m, seconds "
                   "(default 7d, the minutes kept)")
    u.add_argument("--json", action="store_true", help="print the rows as JSON")
    u.set_defaults(func=with_stubs(_usage))
