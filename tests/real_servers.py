"""Real servers for tests: Redis, NATS JetStream, PostgreSQL, each on a free loopback port.

Every server runs from Debian's binaries (scripts/setup-system.sh installs them) in a temporary
directory of its own, in the foreground as a child of the test process (never through systemd),
and is stopped by the fixture that started it. A server that is not installed makes its
fixture skip with the install command in the reason, so the rest of the suite still runs on a
machine without it; CI installs all of them.

The process handles expose `restart()` (stop, then start on the same port and directory) and
`kill()` (SIGKILL) so that fault tests can take a broker away under a running mapping.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout_s} s")


class ServerProcess:
    """One real server: `argv` run in `workdir`, listening on `port`; clients connect to `url`."""

    url: str = ""

    def __init__(self, name: str, argv: list[str], port: int, workdir: str, user: str | None = None):
        self.name, self.argv, self.port, self.workdir, self.user = name, argv, port, workdir, user
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = self.argv
        if self.user is not None and os.geteuid() == 0:
            # PostgreSQL refuses to run as root; drop to its own account for the child only.
            argv = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups", *argv]
        with open(os.path.join(self.workdir, f"{self.name}.log"), "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, n: int = 40) -> str:
        try:
            with open(os.path.join(self.workdir, f"{self.name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def _require(binary: str, package: str) -> str:
    path = binary if os.path.isabs(binary) else shutil.which(binary)
    if not path or not os.path.exists(path):
        pytest.skip(f"{binary} is not installed: run `bash scripts/setup-system.sh` (Debian {package})")
    return path


def redis_server(workdir: str) -> ServerProcess:
    exe = _require("redis-server", "redis-server")
    port = free_port()
    # appendonly + fsync always: a restart of the broker keeps every acknowledged XADD.
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "no"]
    server = ServerProcess("redis", argv, port, workdir)
    server.url = f"redis://127.0.0.1:{port}/0"
    return server


def nats_server(workdir: str) -> ServerProcess:
    exe = _require("nats-server", "nats-server")
    port = free_port()
    store = os.path.join(workdir, "jetstream")
    argv = [exe, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store]
    server = ServerProcess("nats", argv, port, workdir)
    server.url = f"nats://127.0.0.1:{port}"
    return server


def postgres_server(workdir: str | None = None, *, logical: bool = True) -> ServerProcess:
    """A fresh cluster owned by the `postgres` account; superuser `runner`, trust auth on loopback.

    Without `workdir` the cluster lives in a new directory under the system temp dir: pytest's own
    temp dirs are 0700 root, which the `postgres` account cannot traverse. The caller removes it.
    """
    _require(os.path.join(PG_BIN, "postgres"), "postgresql-15")
    workdir = workdir or tempfile.mkdtemp(prefix="runner-pg-")
    port = free_port()
    data = os.path.join(workdir, "pgdata")
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None:
        shutil.chown(workdir, user, user)
    init = [os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "runner", "--auth=trust", "-E", "UTF8",
            "--no-sync"]
    if user is not None:
        init = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *init]
    done = subprocess.run(init, check=False, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")
    argv = [os.path.join(PG_BIN, "postgres"), "-D", data, "-p", str(port), "-h", "127.0.0.1",
            "-k", workdir, "-c", "fsync=off", "-c", "max_connections=200"]
    if logical:
        argv += ["-c", "wal_level=logical", "-c", "max_replication_slots=20", "-c", "max_wal_senders=20"]
    server = ServerProcess("postgres", argv, port, workdir, user=user)
    server.url = f"postgresql://runner@127.0.0.1:{port}/postgres"
    return server


@pytest.fixture
def redis(tmp_path):
    server = redis_server(str(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats(tmp_path):
    server = nats_server(str(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres():
    server = postgres_server()
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
