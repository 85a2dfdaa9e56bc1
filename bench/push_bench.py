"""Push-event latency: an object upload to the handler's start, beside a direct asynchronous
invoke in the same run; and what a network policy adds to a function's first start.

    .venv/bin/python bench/push_bench.py [--n N] [--cold N] [--out PATH]

One in-process server (the HTTP front with the push side) and a real SeaweedFS on loopback
whose filer webhook points at POST /events/s3. The guest prints "STARTED <marker> <time>" as
its first statement; latency = that time minus the time just before the client call:

  upload -> handler      boto3 put_object to SeaweedFS; its webhook; /events/s3; the queue
  /events/s3 -> handler  an S3-format notification POSTed by the client (no SeaweedFS)
  async invoke -> handler  Runner.invoke_async (the baseline: the queue alone)

Samples are sequential (each waits for its handler), environments warm. The ratio column is
p50 against the async-invoke baseline's p50. The network part deploys a function under each
policy and times deploy + first invocation (zygote start, egress set-up at its gate, a cold
start), --cold times each. Prints a table and writes JSON (default bench/results/push_bench.json).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
import zipfile
from http.client import HTTPConnection

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench._common import write_json  # noqa: E402
from bench.http_bench import summarize  # noqa: E402
from runner import Runner  # noqa: E402
from runner.service.http import HttpFront  # noqa: E402
from runner.service.push import Push  # noqa: E402
from runner.triggers.records import s3_record  # noqa: E402
from tests.seaweedfs import seaweedfs_server  # noqa: E402

STAMP = """
import time
def handler(event, context):
    now = time.time()
    if isinstance(event, dict) and "Records" in event:
        marker = event["Records"][0]["s3"]["object"]["key"]
    else:
        marker = event["marker"]
    print(f"STARTED {marker} {now!r}")
    return {}
"""


def package(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", source)
    return buf.getvalue()


def started_at(runner: Runner, name: str, marker: str, timeout_s: float = 30.0) -> float:
    deadline = time.monotonic() + timeout_s
    needle = f"STARTED {marker} "
    while time.monotonic() < deadline:
        for line in runner.read_logs(name, 200):
            if needle in line:
                return float(line.split(needle, 1)[1].split()[0])
        time.sleep(0.002)
    raise TimeoutError(f"{name}: no handler start for {marker}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=30, help="samples per push path")
    ap.add_argument("--cold", type=int, default=3, help="first starts per network policy")
    ap.add_argument("--out")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="push-bench-")
    runner = Runner(os.path.join(work, "data"), idle_ttl_s=600)
    push = Push(runner)
    front = HttpFront(runner, "127.0.0.1", 0, push=push)
    front.start()
    push.start()
    s3fs = seaweedfs_server(os.path.join(work, "seaweedfs"),
                            f"http://127.0.0.1:{front.port}/events/s3")
    results: dict = {"host": platform.node(), "python": platform.python_version(), "rows": {}}
    try:
        import boto3

        runner.deploy("stamp", package(STAMP), runtime="python", handler="app.handler")
        push.triggers.add("stamp", "stamp", "bench")
        s3 = boto3.client("s3", endpoint_url=s3fs.url, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        s3.create_bucket(Bucket="bench")
        # Warm up each path once (environment started, connections open).
        runner.invoke_async("stamp", json.dumps({"marker": "warm"}))
        started_at(runner, "stamp", "warm")
        rows: dict[str, list[float]] = {"async invoke -> handler (baseline)": [],
                                        "/events/s3 -> handler": [],
                                        "upload -> handler (SeaweedFS webhook)": []}
        http = HTTPConnection("127.0.0.1", front.port, timeout=30)
        for i in range(args.n):
            m = f"a{i}"
            t0 = time.time()
            runner.invoke_async("stamp", json.dumps({"marker": m}))
            rows["async invoke -> handler (baseline)"].append(started_at(runner, "stamp", m) - t0)
            m = f"p{i}"
            body = json.dumps({"Records": [s3_record("bench", m, "ObjectCreated:Put")]})
            t0 = time.time()
            http.request("POST", "/events/s3", body=body)
            http.getresponse().read()
            rows["/events/s3 -> handler"].append(started_at(runner, "stamp", m) - t0)
            m = f"u{i}"
            t0 = time.time()
            s3.put_object(Bucket="bench", Key=m, Body=b"x" * 1024)
            rows["upload -> handler (SeaweedFS webhook)"].append(started_at(runner, "stamp", m) - t0)
        http.close()
        base = None
        for name, samples in rows.items():
            s = summarize(samples)
            base = base or s["p50_ms"]
            s["ratio_p50"] = s["p50_ms"] / base
            results["rows"][name] = s
        # Network policies: deploy + first invocation, each a new revision (zygote + egress).
        cold: dict[str, list[float]] = {}
        policies = {"none": "none", "allow (1 endpoint)": f"allow=127.0.0.1:{front.port}",
                    "full (slirp4netns)": "full"}
        for label, policy in policies.items():
            for i in range(args.cold):
                t0 = time.perf_counter()
                runner.deploy(f"net{i}", package(STAMP), runtime="python", handler="app.handler",
                              network_policy=policy, environment={"ROUND": f"{label}{i}"})
                r = runner.invoke(f"net{i}", json.dumps({"marker": f"c{i}"}))
                assert not r.function_error, r.payload
                cold.setdefault(label, []).append(time.perf_counter() - t0)
        base = None
        for label, samples in cold.items():
            s = summarize(samples)
            base = base or s["p50_ms"]
            s["ratio_p50"] = s["p50_ms"] / base
            results["rows"][f"deploy + first invoke, network {label}"] = s
    finally:
        s3fs.stop()
        push.close()
        front.stop()
        runner.close()
    print(f"{'path':<48} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'ratio':>7}")
    for name, s in results["rows"].items():
        print(f"{name:<48} {s['n']:>4} {s['p50_ms']:>9.2f} {s['p99_ms']:>9.2f} "
              f"{s['ratio_p50']:>7.2f}")
    print("wrote", write_json("push_bench.json", results, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
