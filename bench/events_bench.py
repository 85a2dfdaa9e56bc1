"""Event source mappings: records per second end to end, and XADD -> handler latency.

    .venv/bin/python bench/events_bench.py [--quick] [--records N] [--samples N] [--json FILE]

One Redis (Debian redis-server on a free loopback port, no persistence) and one embedded Runner
with EventSources, all in this run, side by side with their baselines:

* throughput: N records already in a stream, a mapping with BatchSize 100 (window 0) drains
  them through a Python function that does nothing; the baseline is a bare consumer loop on
  the same broker (XREADGROUP COUNT 100 + XACK, no function). Target: >= 50% of it. A third
  row, for information: the same function invoked directly (Runner.invoke) with the same
  100-record Kinesis batches, no broker (the function, at 1769 MB = one vCPU, is the same
  on every row), and the mapping again with ParallelizationFactor 4.
* latency: one record at a time on an idle mapping (window 0), from just before XADD to the
  handler's first line (both clocks are this host's time.time()); the baseline is a direct
  Runner.invoke, from just before the call to the handler's first line. Target: p50 <= 5 ms.

Guests run without the namespace sandbox (RUNNER_ISOLATION=off, as the tests' recorder
guests) so that the handler can write its timestamps to a host file; both sides alike.
Writes bench/results/events.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("RUNNER_ISOLATION", "off")

import redis  # noqa: E402

from bench._common import write_json  # noqa: E402
from runner import Runner  # noqa: E402
from runner.sources.base import Record  # noqa: E402
from runner.sources.manager import EventSources  # noqa: E402
from runner.sources.shapes import kinesis_record  # noqa: E402

TARGET_RATIO = 0.5
TARGET_P50_MS = 5.0
BATCH = 100
GUEST = '''
import base64, json, os, time
OUT = os.environ["OUT"]
def handler(event, context):
    t = time.time()
    if os.environ.get("STAMP"):
        r = event["Records"][0]
        sent = json.loads(base64.b64decode(r["kinesis"]["data"]))["t"]
        fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{sent} {t}\\n".encode())
        os.close(fd)
    return {"batchItemFailures": []}
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir: str) -> tuple[subprocess.Popen, str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("events_bench: redis-server is not installed (bash scripts/setup-system.sh)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    client.close()
    return proc, url


def fill(client: redis.Redis, stream: str, n: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(stream, {"data": json.dumps({"n": i}), "partitionKey": f"k{i % 16}"})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def bare_consumer(client: redis.Redis, stream: str, n: int) -> float:
    """Records per second of XREADGROUP COUNT 100 + XACK, nothing else."""
    client.xgroup_create(stream, "bare", id="0")
    t0 = time.perf_counter()
    done = 0
    while done < n:
        reply = client.xreadgroup("bare", "c", {stream: ">"}, count=BATCH, block=1000)
        for _, entries in reply:
            client.xack(stream, "bare", *[e[0] for e in entries])
            done += len(entries)
    return n / (time.perf_counter() - t0)


def drained(client: redis.Redis, stream: str, group: str, n: int) -> bool:
    for g in client.xinfo_groups(stream):
        if g["name"].decode() == group:
            return g["pending"] == 0 and g.get("entries-read") == n
    return False


def mapping_throughput(es: EventSources, client: redis.Redis, url: str, stream: str, n: int,
                       parallelization: int = 1) -> float:
    t0 = time.perf_counter()
    m = es.create(function="sink", source_type="redis-stream", endpoint=url, name=stream,
                  starting_position="TRIM_HORIZON", batch_size=BATCH, parallelization=parallelization)
    group = f"runner-{m.uuid}"
    while not drained(client, stream, group, n):
        time.sleep(0.005)
    rate = n / (time.perf_counter() - t0)
    es.delete(m.uuid)
    return rate


def direct_throughput(runner: Runner, n: int) -> float:
    now = time.time()
    batches = []
    for start in range(0, n, BATCH):
        recs = [Record(f"{now}-{i}", f"k{i % 16}", json.dumps({"n": i}).encode(), now)
                for i in range(start, min(n, start + BATCH))]
        batches.append(json.dumps({"Records": [kinesis_record(r, "s") for r in recs]}).encode())
    t0 = time.perf_counter()
    for body in batches:
        runner.invoke("sink", body)
    return n / (time.perf_counter() - t0)


def read_stamps(path: str) -> list[float]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [(float(b) - float(a)) * 1000 for a, b in (line.split() for line in f if line.strip())]


def mapping_latency(es: EventSources, client: redis.Redis, url: str, out: str, samples: int) -> list[float]:
    m = es.create(function="stamp", source_type="redis-stream", endpoint=url, name="lat",
                  starting_position="LATEST", batch_size=BATCH)
    group = f"runner-{m.uuid}"
    while not any(g["name"].decode() == group for g in client.xinfo_groups("lat")) if client.exists("lat") \
            else True:
        time.sleep(0.01)
    time.sleep(0.6)  # the poller is now blocked in XREADGROUP: an idle mapping
    for i in range(samples + 5):
        client.xadd("lat", {"data": json.dumps({"t": time.time()})})
        deadline = time.monotonic() + 10
        while len(read_stamps(out)) < i + 1 and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(0.02)  # idle again before the next record
    es.delete(m.uuid)
    return read_stamps(out)[5:]  # the first few include the cold start


def direct_latency(runner: Runner, out: str, samples: int) -> list[float]:
    for i in range(samples + 5):
        rec = Record("1-0", "k", json.dumps({"t": time.time()}).encode(), time.time())
        runner.invoke("stamp", json.dumps({"Records": [kinesis_record(rec, "s")]}).encode())
        time.sleep(0.02)
    return read_stamps(out)[5:]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--records", type=int)
    p.add_argument("--samples", type=int)
    p.add_argument("--json")
    args = p.parse_args()
    n = args.records or (5000 if args.quick else 20000)
    samples = args.samples or (100 if args.quick else 300)
    work = tempfile.mkdtemp(prefix="events-bench-")
    proc, url = start_redis(work)
    client = redis.Redis.from_url(url)
    runner = Runner(os.path.join(work, "data"), idle_ttl_s=600)
    es = EventSources(runner)
    es.start()
    try:
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as zf:
            zf.writestr("app.py", GUEST)
        lat_map, lat_direct = os.path.join(work, "map.txt"), os.path.join(work, "direct.txt")
        runner.deploy("sink", code.getvalue(), runtime="python", handler="app.handler", memory_mb=1769,
                      environment={"OUT": os.path.join(work, "none")})
        runner.deploy("stamp", code.getvalue(), runtime="python", handler="app.handler",
                      environment={"OUT": lat_map, "STAMP": "1"})
        fill(client, "base", n)
        fill(client, "tp", n)
        fill(client, "tp4", n)
        bare = bare_consumer(client, "base", n)
        mapped = mapping_throughput(es, client, url, "tp", n)
        fill(client, "warm4", 2000)  # four environments started before the measured run
        mapping_throughput(es, client, url, "warm4", 2000, parallelization=4)
        mapped4 = mapping_throughput(es, client, url, "tp4", n, parallelization=4)
        direct = direct_throughput(runner, n)
        via_mapping = mapping_latency(es, client, url, lat_map, samples)
        runner.deploy("stamp", environment={"OUT": lat_direct, "STAMP": "1"})
        via_invoke = direct_latency(runner, lat_direct, samples)
    finally:
        es.close()
        runner.close()
        client.close()
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    ratio = mapped / bare
    results = {
        "records": n, "batch_size": BATCH,
        "throughput_rps": {"mapping": mapped, "mapping_parallelization_4": mapped4, "bare_consumer": bare,
                           "direct_invoke": direct},
        "throughput_ratio": ratio, "throughput_target": TARGET_RATIO,
        "latency_ms": {"mapping_p50": pct(via_mapping, 0.5), "mapping_p99": pct(via_mapping, 0.99),
                       "invoke_p50": pct(via_invoke, 0.5), "invoke_p99": pct(via_invoke, 0.99)},
        "latency_samples": len(via_mapping), "latency_target_p50_ms": TARGET_P50_MS,
    }
    lat = results["latency_ms"]
    print(f"{'events (redis stream, batch 100)':<44} {'value':>12} {'baseline':>12} {'ratio':>7}  target")
    print(f"{'records/s, mapping vs bare XREADGROUP+XACK':<44} {mapped:>12.0f} {bare:>12.0f} {ratio:>7.2f}  "
          f">= {TARGET_RATIO:.2f} {'ok' if ratio >= TARGET_RATIO else 'MISSED'}")
    print(f"{'records/s, same with ParallelizationFactor 4':<44} {mapped4:>12.0f} {bare:>12.0f} "
          f"{mapped4 / bare:>7.2f}  (info)")
    print(f"{'records/s, direct Invoke of the same batches':<44} {direct:>12.0f} {'':>12} {'':>7}  (info)")
    print(f"{'XADD -> handler p50 ms, vs direct Invoke':<44} {lat['mapping_p50']:>12.2f} {lat['invoke_p50']:>12.2f} "
          f"{lat['mapping_p50'] / lat['invoke_p50']:>7.2f}  <= {TARGET_P50_MS} ms "
          f"{'ok' if lat['mapping_p50'] <= TARGET_P50_MS else 'MISSED'}")
    print(f"{'XADD -> handler p99 ms, vs direct Invoke':<44} {lat['mapping_p99']:>12.2f} {lat['invoke_p99']:>12.2f}")
    print("wrote", write_json("events.json", results, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
