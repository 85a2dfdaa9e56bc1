"""A way out of the sandbox's empty network namespace, only as wide as the function's policy.

Every sandbox under a network policy gets its own network namespace (bwrap --unshare-net: only
loopback, no route anywhere). At the gate (namespaces.Gate, before any guest code runs) the host
opens exactly what the policy allows:

* "none":  nothing.
* "allow=IP:PORT,...": for each endpoint, a listening socket INSIDE the sandbox's namespace on
  that very IP:PORT (a non-loopback IP is first added to the namespace's `lo`), relayed by the
  server to the real endpoint from the host's namespace. The guest connects to the address it
  was given and reaches that endpoint, and nothing else exists in its namespace: an unlisted
  port, the host's other loopback services, the outside world all fail at connect().
* "full": slirp4netns (Debian's user-mode network stack, as rootless containers use it) gives
  the namespace a tap device with NAT to the outside, started with --disable-host-loopback so
  that 127.0.0.1 of the host, where the runner's own ports listen, is unreachable.

The runner's own listening ports are never relayed, even when listed: before each relayed
connection the target is checked against the sockets this process listens on.

Why listening sockets made from a helper thread are safe: setns(CLONE_NEWNET) changes the
network namespace of the calling thread only; the thread enters the sandbox's namespace,
creates and binds its sockets there (a socket keeps the namespace it was made in), and exits
without ever running anything else. The server's other threads never change namespace.
Sandboxes forked from a zygote (Python) share the zygote's namespace, so one relay serves all
environments of a revision; it is closed with the zygote's or environment's limits
(limits.Enforcement.release).
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import shutil
import socket
import subprocess
import threading
from typing import Callable

import psutil

from runner.errors import InternalError
from runner.model import parse_network_policy

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
READY_TIMEOUT_S = 10.0
BUFFER = 64 * 1024
_libc = ctypes.CDLL(None, use_errno=True)


def needs_namespace(policy: str) -> bool:
    """Whether a sandbox gets its own network namespace: always, except the legacy flag's
    host network (network=True without a policy)."""
    return policy != "host"


def effective(network: bool, network_policy: str) -> str:
    """The policy a sandbox runs under: "host" (legacy network=True), "none", "full" or the
    allow-list string."""
    if network_policy:
        return network_policy
    return "host" if network else "none"


class Egress:
    """What was opened for one sandbox; close() removes it (never raises)."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []
        self._closed = threading.Event()

    def close(self) -> None:
        self._closed.set()
        for c in reversed(self._closers):
            try:
                c()
            except Exception:  # a close must never fail the environment's teardown
                log.debug("egress close step failed", exc_info=True)
        self._closers.clear()


def attach(pid: int, policy: str) -> Egress | None:
    """Open the policy's way out for the sandbox whose process is `pid` (held at its gate).
    None when there is nothing to open. Raises InternalError if the policy cannot be
    provided (the environment then fails to start, rather than run with other access)."""
    kind, endpoints = parse_network_policy(policy if policy != "host" else "")
    if kind == "full":
        return _slirp(pid)
    if kind == "allow":
        return _relay(pid, endpoints)
    return None


# ---------------------------------------------------------------------------- full

def _slirp(pid: int) -> Egress:
    exe = shutil.which("slirp4netns")
    if exe is None:
        raise InternalError("network: 'full' needs slirp4netns (apt-get install slirp4netns)")
    ready_r, ready_w = os.pipe()
    exit_r, exit_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [exe, "--configure", "--mtu=65520", "--disable-host-loopback",
             f"--ready-fd={ready_w}", f"--exit-fd={exit_r}", str(pid), "tap0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(ready_w, exit_r), close_fds=True, start_new_session=True)
    except OSError as exc:
        for fd in (ready_r, ready_w, exit_r, exit_w):
            os.close(fd)
        raise InternalError(f"network: cannot start slirp4netns: {exc}") from None
    os.close(ready_w)
    os.close(exit_r)
    ok = select.select([ready_r], [], [], READY_TIMEOUT_S)[0] and os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    e = Egress()

    def stop() -> None:
        os.close(exit_w)  # slirp4netns exits on EOF of its exit fd
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    e._closers.append(stop)
    if not ok:
        err = b""
        proc.kill()
        if proc.stderr is not None:
            err = proc.stderr.read()[-300:]
        e.close()
        raise InternalError(f"network: slirp4netns did not come up: {err.decode(errors='replace')}")
    return e


# ---------------------------------------------------------------------------- allow list

def _in_namespace(pid: int, fn: Callable[[], object]) -> object:
    """Run `fn` on a fresh thread that has entered `pid`'s network namespace."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=run, name="egress-setns", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise InternalError(f"network: cannot open the allow list inside the sandbox: "
                            f"{box['error']}")
    return box["value"]


def _relay(pid: int, endpoints: tuple[tuple[str, int], ...]) -> Egress:
    extra = sorted({ip for ip, _ in endpoints if not ip.startswith("127.")})
    if extra:
        ip_cmd, nsenter = shutil.which("ip"), shutil.which("nsenter")
        if not ip_cmd or not nsenter:
            raise InternalError("network: allow-listing a non-loopback address needs ip and "
                                "nsenter (iproute2, util-linux)")
        for addr in extra:
            r = subprocess.run([nsenter, f"--net=/proc/{pid}/ns/net", ip_cmd, "addr", "add",
                                f"{addr}/32", "dev", "lo"], capture_output=True, timeout=10)
            if r.returncode != 0:
                raise InternalError(f"network: cannot add {addr} inside the sandbox: "
                                    f"{r.stderr.decode(errors='replace').strip()}")

    def listen() -> list[socket.socket]:
        socks = []
        for ip, port in endpoints:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
            s.listen(64)
            socks.append(s)
        return socks

    listeners: list[socket.socket] = _in_namespace(pid, listen)  # type: ignore[assignment]
    e = Egress()
    wake_r, wake_w = os.pipe()

    def stop() -> None:
        os.write(wake_w, b"x")
        for s in listeners:
            s.close()
        os.close(wake_w)

    e._closers.append(stop)
    t = threading.Thread(target=_accept_loop, args=(listeners, wake_r, e), name="egress-relay",
                         daemon=True)
    t.start()
    return e


def _accept_loop(listeners: list[socket.socket], wake_r: int, e: Egress) -> None:
    by_fd = {s.fileno(): s for s in listeners}
    try:
        while not e._closed.is_set():
            ready = select.select([wake_r, *by_fd], [], [])[0]
            if wake_r in ready:
                return
            for fd in ready:
                s = by_fd[fd]
                try:
                    conn, _ = s.accept()
                except OSError:
                    continue
                target = s.getsockname()
                threading.Thread(target=_serve, args=(conn, target), name="egress-conn",
                                 daemon=True).start()
    finally:
        os.close(wake_r)


def _own_ports() -> set[int]:
    """TCP ports this process listens on: never relayed (the runner's gRPC and HTTP)."""
    try:
        return {c.laddr.port for c in psutil.Process().net_connections("tcp")
                if c.status == psutil.CONN_LISTEN}
    except (psutil.Error, OSError):
        return set()


def _is_local(ip: str) -> bool:
    if ip.startswith("127.") or ip == "0.0.0.0":
        return True
    try:
        return any(a.address == ip for addrs in psutil.net_if_addrs().values() for a in addrs)
    except OSError:
        return True  # unknown: treat as ours, refusing is the safe side


def _serve(conn: socket.socket, target: tuple[str, int]) -> None:
    """Relay one connection to `target` from the host's namespace."""
    if target[1] in _own_ports() and _is_local(target[0]):
        conn.close()  # the runner's own port: refused as if nothing listened
        return
    try:
        up = socket.create_connection(target, timeout=10)
    except OSError:
        conn.close()
        return
    up.settimeout(None)

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(BUFFER)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    back = threading.Thread(target=pump, args=(up, conn), name="egress-pump", daemon=True)
    back.start()
    pump(conn, up)
    back.join()
    conn.close()
    up.close()
