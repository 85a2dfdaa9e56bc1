"""`runner serve --workers N`: N nodes on one host, one process each, sharing the port.

Why processes: all host-side Python of one process shares one GIL, so one process tops out
near one core's worth of host work (decision 040). N processes use N cores. They share the
client port through SO_REUSEPORT (the kernel spreads new connections over the listening
sockets) and their state through the PostgreSQL store: functions, routes, the async queue;
each has its own data directory (`<data-dir>/node-<i>`: local code cache, logs, scratch).

This supervisor only starts and restarts them: a node that dies (kill -9, OOM) is started
again after RESTART_DELAY_S as a new member (its leases expire and are taken over meanwhile);
SIGTERM/SIGINT is passed to every node, which finishes its in-flight invocations.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from runner.stop_signal import StopSignal

RESTART_DELAY_S = 1.0


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


DEFAULT_MAX_ENVIRONMENTS = 256  # serve's default, host-wide: split between the nodes


def node_argv(argv: list[str], index: int, port: int, http_port: int | None,
              data_dir: str, workers: int = 1) -> list[str]:
    """The serve command line of node `index`: `argv` (the supervisor's, without the program)
    with one worker, the shared ports, its own data directory; only node 0 deploys examples.
    Host-wide settings are split or spread: `--max-environments` (a host limit) is divided
    between the nodes, and `--metrics-port P` becomes P + index (each node serves its own)."""
    out, skip = [], False
    drop_value = {"--workers", "--port", "--http-port", "--data-dir", "--max-environments",
                  "--metrics-port"}
    values: dict[str, str] = {}
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in drop_value:
            if "=" in arg:
                values[name] = arg.split("=", 1)[1]
            else:
                skip = True
                if i + 1 < len(argv):
                    values[name] = argv[i + 1]
            continue
        if name == "--examples" and index > 0:
            # --examples takes an optional DIR: drop it too if one follows.
            if "=" not in arg and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                skip = True
            continue
        out.append(arg)
    out += ["--workers", "1", "--reuse-port", "--port", str(port),
            "--data-dir", os.path.join(data_dir, f"node-{index}")]
    host_limit = int(values.get("--max-environments", DEFAULT_MAX_ENVIRONMENTS))
    out += ["--max-environments", str(max(1, host_limit // workers))]
    if "--metrics-port" in values:
        metrics = int(values["--metrics-port"])
        out += ["--metrics-port", str(metrics + index if metrics else 0)]
    if http_port is not None:
        out += ["--http-port", str(http_port)]
    return out


class Supervisor:
    def __init__(self, argv: list[str], workers: int, host: str, port: int,
                 http_port: int | None, data_dir: str) -> None:
        self.argv, self.workers, self.host = argv, workers, host
        self.port = port or free_port(host)
        self.http_port = (http_port or free_port(host)) if http_port is not None else None
        self.data_dir = data_dir
        self.procs: list[subprocess.Popen | None] = [None] * workers
        self._stop: StopSignal | None = None  # installed by run(), in the main thread

    def _start(self, index: int) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "runner", "serve",
               *node_argv(self.argv, index, self.port, self.http_port, self.data_dir,
                          self.workers)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

    def _relay(self, index: int, proc: subprocess.Popen, ready: threading.Event) -> None:
        for line in proc.stdout:
            if re.match(r"^(http )?listening on ", line):
                if line.startswith("listening") and not ready.is_set():
                    ready.set()
                continue  # the supervisor announces the shared ports once
            print(f"[node-{index}] {line}", end="", flush=True)
        ready.set()

    def run(self) -> int:
        self._stop = StopSignal()  # not an Event set in the handler: see runner/stop_signal.py
        readies = []
        for i in range(self.workers):
            ready = threading.Event()
            self.procs[i] = proc = self._start(i)
            threading.Thread(target=self._relay, args=(i, proc, ready), daemon=True).start()
            readies.append(ready)
        for ready in readies:
            ready.wait(120)
        if any(p.poll() is not None for p in self.procs):
            self._terminate()
            print("runner: a worker failed to start (see its messages above)", file=sys.stderr)
            return 2
        print(f"listening on {self.host}:{self.port} ({self.workers} workers; data in "
              f"{self.data_dir}/node-*)", flush=True)
        if self.http_port is not None:
            print(f"http listening on {self.host}:{self.http_port}", flush=True)
        while not self._stop.wait(0.5):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None:
                    print(f"runner: worker {i} exited with {proc.returncode}; restarting it",
                          file=sys.stderr, flush=True)
                    time.sleep(RESTART_DELAY_S)
                    self.procs[i] = proc = self._start(i)
                    threading.Thread(target=self._relay, args=(i, proc, threading.Event()),
                                     daemon=True).start()
        print("shutting down: finishing in-flight invocations", flush=True)
        self._terminate()
        print("stopped", flush=True)
        return 0

    def _terminate(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is not None:
                proc.wait()
