"""`runner doctor`: which isolation protections this host gives guests (the probes and the table
are runner/confinement/doctor.py's; this is the command around them). It needs no server.
"""

from __future__ import annotations

import json

from runner.confinement import doctor


def cmd_doctor(args) -> int:
    """Print which protections this host gives guests; exit 1 if any is off (scriptable)."""
    rows = doctor.rows()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(doctor.format_table(rows))
    return 0 if all(r.enabled for r in rows) else 1


def add_commands(sub) -> None:
    doc = sub.add_parser("doctor", help="show which isolation protections this host supports")
    doc.add_argument("--json", action="store_true")
    doc.set_defaults(func=cmd_doctor)
