"""A way out of the sandbox's empty network namespace, only as wide as the function's policy.

Every sandbox under a network policy gets its own network namespace (bwrap --unshare-net: only
loopback, no route anywhere). At the gate (gate.Gate, before any guest code runs) the host
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
import time
from typing import Callable

import psutil

from runner.errors import InternalError
from runner.network_policy import parse_network_policy

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
READY_TIMEOUT_S = 10.0
BUFFER = 64 * 1024
# Relayed connections open at once per sandbox: each holds two server threads, so a guest must
# not be able to make the server start threads without bound. Past it, a connection is closed
# at once (the guest sees a reset), as a saturated proxy would answer.
MAX_CONNECTIONS = 64
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
        self._lock = threading.Lock()

    def close(self) -> None:
        """Idempotent and thread-safe: the closers close raw descriptors, and a second close
        of a number the kernel has meanwhile handed to another file (another environment's
        channel) would break that one."""
        with self._lock:
            closers, self._closers = self._closers, []
            self._closed.set()
        for c in reversed(closers):
            try:
                c()
            except Exception:  # a close must never fail the environment's teardown
                log.debug("egress close step failed", exc_info=True)


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
    # bwrap reports the sandbox's pid right after clone(), while its child still sets the
    # namespace up (loopback, mounts) before it blocks on the gate; slirp4netns configuring
    # the namespace meanwhile made the sandbox fail to start about one time in eight here
    # (bwrap's child exited 1). So: wait until the child is blocked on the gate's pipe.
    if not _wait_until_held(pid):
        raise InternalError("network: the sandbox never finished its set-up")
    ready_r, ready_w = os.pipe()
    # slirp4netns exits when its exit fd reads EOF: when stop() closes our end, and also when
    # this server dies (the kernel closes it), so it never outlives the server. It does not
    # exit on its own when the namespace's processes are gone.
    exit_r, exit_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [exe, "--configure", "--mtu=65520", "--disable-host-loopback",
             f"--ready-fd={ready_w}", f"--exit-fd={exit_r}", str(pid), "tap0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(ready_w, exit_r), close_fds=True, start_new_session=True)
    except OSError as exc:
        for fd in (ready_r, ready_w, exit_r, exit_w):
            os.close(fd)
        raise InternalError(f"network: cannot start slirp4netns: {exc}") from None
    os.close(ready_w)
    os.close(exit_r)
    try:
        # poll, not select: a busy server holds descriptors above select's limit of 1,024.
        ready = select.poll()
        ready.register(ready_r, select.POLLIN)
        ok = bool(ready.poll(READY_TIMEOUT_S * 1000)) and os.read(ready_r, 1) == b"1"
    finally:
        os.close(ready_r)
    e = Egress()

    def stop() -> None:  # once: Egress.close runs each closer at most once
        os.close(exit_w)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    e._closers.append(stop)
    # Ready also means configured: the namespace has slirp4netns's default route via tap0
    # before guest code may use it (a few ms at most).
    ok = ok and _wait_for_default_route(pid)
    if not ok:
        e.close()
        raise InternalError(f"network: slirp4netns did not come up within {READY_TIMEOUT_S} s "
                            f"(exit status {proc.returncode})")
    return e


def _wait_until_held(pid: int, timeout_s: float = READY_TIMEOUT_S) -> bool:
    """Whether bwrap's child got to its wait on the gate (a pipe read: the only one it makes
    between clone() and the gate; its earlier waits are on an eventfd). Where the kernel hides
    wait channels, the namespace's loopback being up is the fallback sign."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/wchan") as f:
                wchan = f.read().strip()
            if wchan in ("", "0"):
                with open(f"/proc/{pid}/net/fib_trie") as f:
                    if "127.0.0.1" in f.read():
                        return True
            elif "pipe" in wchan:
                return True
        except OSError:
            return False
        time.sleep(0.001)
    return False


def _wait_for_default_route(pid: int, timeout_s: float = READY_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/net/route") as f:
                if any(line.split()[:2] == ["tap0", "00000000"] for line in f):
                    return True
        except OSError:
            return False
        time.sleep(0.002)
    return False


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
    if not _wait_until_held(pid):  # bwrap brings up the loopback we bind to (see _slirp)
        raise InternalError("network: the sandbox never finished its set-up")
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
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    poller = select.poll()  # not select(): descriptors above 1,024 are normal on a busy server
    for fd in (wake_r, *by_fd):
        poller.register(fd, select.POLLIN)
    try:
        while not e._closed.is_set():
            ready = [fd for fd, _ in poller.poll()]
            if wake_r in ready:
                return
            for fd in ready:
                s = by_fd[fd]
                try:
                    conn, _ = s.accept()
                except OSError:
                    continue
                if not slots.acquire(blocking=False):
                    conn.close()
                    continue
                target = s.getsockname()
                threading.Thread(target=_serve, args=(conn, target, slots.release),
                                 name="egress-conn", daemon=True).start()
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


def _serve(conn: socket.socket, target: tuple[str, int], done: Callable[[], None]) -> None:
    """Relay one connection to `target` from the host's namespace; `done()` at the end."""
    try:
        _relay_one(conn, target)
    finally:
        done()


def _relay_one(conn: socket.socket, target: tuple[str, int]) -> None:
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
