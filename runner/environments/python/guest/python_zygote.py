"""The Python zygote: runs a function's init phase once, then forks ready environments.

Runs as `python -I -S -B python_zygote.py` inside the version's sandbox, with the same
environment a plain Python environment gets. Protocol with the host (docs/guest-protocol.md,
"Zygote"): a SOCK_SEQPACKET socket in `_RUNNER_FD`, one msgpack map per packet:

    zygote -> host  {"t": "hello", "pid"}          host applies limits, then sends init
    host -> zygote  {"t": "init"}
    zygote -> host  {"t": "ready", "init_ms", "forkable"} | {"t": "init_error", "error", ...}
    host -> zygote  {"t": "fork", "seq"}  + 2 fds (SCM_RIGHTS): the child's control socket and
                                            its log pipe's write end
    zygote -> host  {"t": "forked", "seq", "pid"} | {"t": "fork_error", "seq", "error"}
    zygote -> host  {"t": "exited", "pid", "status", "maxrss_kb"}   whenever a child is reaped
    host -> zygote  {"t": "ns", "seq", "cookie", "filter", "tmp_bytes"}   once, after ready,
                                            when per-environment namespaces are on
    zygote -> host  {"t": "ns_ready", "seq", "landlock_abi"} | {"t": "ns_error", "seq", "error"}

After ns_ready every child is clone()d into its own namespaces (python_envns.py) instead of
fork()ed; pids in `forked` and `exited` stay the zygote's numbering (each child is 1 in its own).

A forked child then speaks the ordinary environment protocol on its own socket, starting with
hello, so the host applies the child's own limits before it runs anything (invariant of
docs/decisions/002). Fork safety:
* the zygote is single-threaded: the bootstrap starts no thread, and if the function's init
  started one, `forkable` is False and the host falls back to spawning plain environments
  (fork() copies only the calling thread; locks held by others would stay locked forever);
* each child reseeds `random` and drops inherited descriptors it must not keep (the zygote's
  control socket), so two environments never share an RNG stream or a channel;
* the zygote reaps every child (wait4) and reports its status and peak RSS: the host is not the
  parent of forked environments and could not wait for them itself.
"""

import array
import os
import random  # imported once here so that a forked child only reseeds it
import select
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mpack  # noqa: E402
import python_bootstrap as boot  # noqa: E402
import python_envns as envns  # noqa: E402

del sys.path[0]

MAX_PACKET = 1 << 16


class SeqChannel:
    """One msgpack map per SOCK_SEQPACKET packet; fds ride along with a packet."""

    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)

    def send(self, msg):
        self.sock.send(_mpack.packb(msg))

    def recv(self):
        """(message, fds) or (None, []) on EOF."""
        fds = array.array("i")
        data, anc, _flags, _addr = self.sock.recvmsg(MAX_PACKET, socket.CMSG_SPACE(8 * fds.itemsize))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        if not data:
            for fd in fds:
                os.close(fd)
            return None, []
        return _mpack.unpackb(data), list(fds)


def child_main(ctrl_fd, log_fd, handler, zygote_sock, wake_fds, ns=None):
    """In the forked child: become an ordinary environment. Never returns. `ns`: the child
    was cloned into new namespaces and enters them first (python_envns.py)."""
    try:
        if ns is not None:
            try:
                envns.enter(ns)
            except OSError as exc:
                os.write(log_fd, ("runner: cannot set up the environment's namespaces: %s\n"
                                  % exc).encode())
                os._exit(71)  # EX_OSERR: no environment runs half isolated
            envns.after_fork_child()  # the function's after_in_child hooks: filtered now
        # The child must not keep the zygote's channel (it could forge fork requests' replies)
        # nor the zygote's SIGCHLD wake-up pipe.
        zygote_sock.close()
        for fd in wake_fds:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()  # own process group: the host kills the environment with killpg
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        random.seed()  # fresh OS entropy: environments never share an RNG stream
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
        chan = boot.Channel(ctrl_fd)
        t0 = time.perf_counter()
        chan.send({"t": "hello", "pid": os.getpid()})
        msg = chan.recv()
        if msg is None or msg.get("t") != "init":
            os._exit(0)
        # After init, so after the host applied this child's limits: the warm-up calls only the
        # bootstrap's code, but that code uses modules (json) the function's init could have
        # patched. For a pre-started spare this is still off any cold start's critical path.
        boot.warm_up()
        chan.send({"t": "ready", "init_ms": (time.perf_counter() - t0) * 1000.0,
                   "maxrss_kb": boot._maxrss_kb(), "forked": True})
        code = boot.serve(chan, handler)
        boot._flush_streams()
        os._exit(code)
    except BaseException:
        os._exit(70)  # EX_SOFTWARE: the host reports a crash with this status


def _single_task():
    """No native threads either (threading only counts its own)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return True


def namespaces_probe(msg):
    """(Config or None, reply) for the host's `ns` message: one child is cloned and set up
    as every environment will be, then exits, so that a host where it cannot work (no
    unprivileged user namespaces, an old kernel) gets a reason once instead of a crash per
    cold start. The zygote keeps forking plain children then."""
    seq = msg.get("seq")
    try:
        cfg = envns.Config(msg)
        r, w = os.pipe()
        pid = envns.clone(cfg)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        return None, {"t": "ns_error", "seq": seq, "error": str(exc)}
    if pid == 0:
        os.close(r)
        try:
            envns.enter(cfg)
            code = 0
        except BaseException as exc:
            os.write(w, str(exc).encode()[:1000])
            code = 1
        os._exit(code)
    os.close(w)
    why = b""
    while chunk := os.read(r, 4096):
        why += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return None, {"t": "ns_error", "seq": seq,
                      "error": why.decode(errors="replace") or "probe exited %d" % status}
    return cfg, {"t": "ns_ready", "seq": seq, "landlock_abi": envns.landlock_abi()}


def reap(chan):
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        chan.send({"t": "exited", "pid": pid, "status": code, "maxrss_kb": usage.ru_maxrss})


def _merge_memory():
    """RUNNER_KSM=on (runner/confinement/ksm.py): mark this address space's anonymous memory
    mergeable before the init phase; fork() passes the mark to every environment. Best effort:
    a kernel without PR_SET_MEMORY_MERGE (< 6.4) leaves the zygote as it was, and the server
    has already warned about it at start-up."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(67, 1, 0, 0, 0)  # PR_SET_MEMORY_MERGE


def main():
    chan = SeqChannel(int(os.environ.pop("_RUNNER_FD")))
    if os.environ.pop("_RUNNER_KSM", "") == "1":
        _merge_memory()
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    chan.send({"t": "hello", "pid": os.getpid()})
    msg, _ = chan.recv()
    if msg is None or msg.get("t") != "init":
        return 0
    handler, err, init_ms = boot.run_init()
    if err is not None:
        chan.send({"t": "init_error", "error": err, "init_ms": init_ms, "maxrss_kb": boot._maxrss_kb()})
        return 1
    # gc.freeze(): objects created by init move to a permanent generation, so a child's garbage
    # collector never walks (and so never copies-on-write) the pages it shares with the zygote.
    import gc

    # One dry run of the invoke path here too (our no-op handler; limits already apply to the
    # zygote): what it creates lazily (ctypes' call path for the trace-id buffer, json's
    # encoder) is then made once and shared by every child, instead of once per child in its
    # own warm-up (PSS per idle environment 2.25 -> 2.11 MB, 30 of them).
    boot.warm_up()
    gc.freeze()
    forkable = threading.active_count() == 1 and _single_task()
    chan.send({"t": "ready", "init_ms": init_ms, "forkable": forkable, "maxrss_kb": boot._maxrss_kb()})

    # SIGCHLD wakes the loop through a pipe (set_wakeup_fd) so children are reaped promptly
    # even while the zygote waits for the next fork request.
    ns = None  # per-environment namespaces, once the host's `ns` message came and worked
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    waiting = select.poll()  # poll, not select: no limit on descriptor numbers
    waiting.register(chan.sock.fileno(), select.POLLIN)
    waiting.register(wake_r, select.POLLIN)
    while True:
        ready = [fd for fd, _ in waiting.poll()]
        if wake_r in ready:
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
            reap(chan)
        if chan.sock.fileno() not in ready:
            continue
        msg, fds = chan.recv()
        if msg is None:
            return 0  # host closed the channel: the version is retired
        if msg.get("t") == "ns":
            for fd in fds:
                os.close(fd)
            ns, reply = namespaces_probe(msg)
            chan.send(reply)
            continue
        if msg.get("t") != "fork" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            chan.send({"t": "fork_error", "seq": msg.get("seq"), "error": "fork needs 2 fds"})
            continue
        ctrl_fd, log_fd = fds
        try:
            pid = envns.clone(ns) if ns is not None else os.fork()
        except OSError as exc:
            os.close(ctrl_fd)
            os.close(log_fd)
            chan.send({"t": "fork_error", "seq": msg.get("seq"), "error": str(exc)})
            continue
        if pid == 0:
            child_main(ctrl_fd, log_fd, handler, chan.sock, (wake_r, wake_w), ns)
        os.close(ctrl_fd)
        os.close(log_fd)
        chan.send({"t": "forked", "seq": msg.get("seq"), "pid": pid})


if __name__ == "__main__":
    sys.exit(main())
