"""Build an "AWS SDK" layer, so that functions use the SDK as they do on Lambda, where the
runtime has it preinstalled (issue 20). Publish the zip and name it in the function's layers:

    .venv/bin/python scripts/build_sdk_layer.py --python sdk-python.zip [--services s3,dynamodb,sts]
    .venv/bin/python scripts/build_sdk_layer.py --node sdk-node.zip
    runner layer publish aws-sdk-python sdk-python.zip --compatible-runtimes python3.12
    runner deploy my-fn ... --layer arn:aws:lambda:us-east-1:000000000000:layer:aws-sdk-python:1

Python: boto3 and its dependencies (botocore, s3transfer, jmespath, python-dateutil, six,
urllib3), copied from this interpreter's site-packages (the versions the server runs) into
`python/`, which the runtime puts on sys.path from /opt. `--services` keeps only those
services' models in botocore/data (all of them are ~25 MB; `all` keeps them); the shared
files (endpoints, partitions, retry rules) are always kept.

Node: `@aws-sdk/client-s3` and `@aws-sdk/client-dynamodb` (or `--packages`), installed with
npm into `nodejs/node_modules`, which Lambda's NODE_PATH covers. Needs npm and the registry.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

PY_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
NODE_PACKAGES = ("@aws-sdk/client-s3", "@aws-sdk/client-dynamodb")
DEFAULT_SERVICES = ("s3", "dynamodb", "sts", "sqs", "sns", "lambda")


def _source(name: str) -> str:
    """The directory (package) or file (module) `name` is imported from here."""
    mod = importlib.import_module(name)
    path = mod.__file__ or ""
    return os.path.dirname(path) if os.path.basename(path) == "__init__.py" else path


def _keep(rel: str, services: set[str] | None) -> bool:
    parts = rel.split(os.sep)
    if "__pycache__" in parts or rel.endswith((".pyc", ".pyo")):
        return False
    # botocore/data/<service>/... and boto3/data/<service>/...: only the services asked for.
    if services is not None and len(parts) > 3 and parts[0] in ("botocore", "boto3") \
            and parts[1] == "data":
        return parts[2] in services
    return True


def build_python(out: str, services: set[str] | None) -> int:
    """Write the layer zip; returns the number of files."""
    count = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in PY_PACKAGES:
            src = _source(name)
            if os.path.isfile(src):
                zf.write(src, f"python/{os.path.basename(src)}")
                count += 1
                continue
            base = os.path.dirname(src)
            for root, dirs, files in os.walk(src):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for f in sorted(files):
                    full = os.path.join(root, f)
                    rel = os.path.relpath(full, base)
                    if _keep(rel, services) and not os.path.islink(full):
                        zf.write(full, "python/" + rel.replace(os.sep, "/"))
                        count += 1
    return count


def build_node(out: str, packages: list[str]) -> int:
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: install Node.js's npm (scripts/setup-system.sh)")
    work = tempfile.mkdtemp(prefix="sdk-layer-")
    try:
        prefix = os.path.join(work, "nodejs")
        os.makedirs(prefix)
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--omit=dev", "--prefix",
                        prefix, *packages], check=True)
        count = 0
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for root, dirs, files in os.walk(os.path.join(prefix, "node_modules")):
                dirs.sort()
                for f in sorted(files):
                    full = os.path.join(root, f)
                    if not os.path.islink(full):
                        zf.write(full, os.path.relpath(full, work).replace(os.sep, "/"))
                        count += 1
        return count
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", metavar="ZIP", help="write the Python SDK layer here")
    p.add_argument("--services", default=",".join(DEFAULT_SERVICES),
                   help="botocore service models to keep, comma-separated, or 'all'")
    p.add_argument("--node", metavar="ZIP", help="write the Node.js SDK layer here")
    p.add_argument("--packages", default=",".join(NODE_PACKAGES), help="npm packages (Node)")
    args = p.parse_args(argv)
    if not args.python and not args.node:
        p.error("give --python ZIP and/or --node ZIP")
    if args.python:
        services = None if args.services == "all" else set(filter(None, args.services.split(",")))
        n = build_python(args.python, services)
        print(f"{args.python}: {n} files, {os.path.getsize(args.python)} bytes")
    if args.node:
        n = build_node(args.node, [x for x in args.packages.split(",") if x])
        print(f"{args.node}: {n} files, {os.path.getsize(args.node)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
