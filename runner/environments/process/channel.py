"""The host's end of one guest's channel and log pipe: `GuestChannel`.

A guest talks over a non-blocking socketpair (frames.py) and prints on a pipe. The host waits on
both with one poll object per channel, so a reply and the log lines printed before it are
collected together, and a guest printing without end cannot grow our memory (MAX_LOG_BYTES per
invocation, the rest read and dropped with one marker).

A `GuestChannel` owns the two descriptors it is given (the host's end of the socketpair and the
log pipe's read end) and the state of reading them; its owner closes it (`close()`) when the
guest is gone. ProcessEnvironment has one per guest process, a forked environment of the Python
zygote too, and the zygote itself for its start-up handshake (launch.py), over its
SOCK_SEQPACKET control socket (`packets=True`).
"""

from __future__ import annotations

import os
import select
import socket
import time
from typing import Any

from runner.environments.process.frames import FrameReader, PacketReader, encode, encode_packet
from runner.errors import EnvironmentGone, ProtocolError
from runner.model import MB

MAX_LOG_BYTES = MB  # per invocation; Lambda truncates huge outputs too
_TRUNCATED = b"\n[runner] log truncated: output over 1 MiB per invocation dropped\n"


class GuestChannel:
    """Frame send/receive and log draining for one guest process (see the module docstring).

    After a `wait()` that returned None, `timed_out` says the deadline passed and `bad_frame`
    why the guest broke the protocol (an undecodable or oversized frame, a field of the wrong
    type); neither set means the guest closed its end (it exited).
    """

    __slots__ = ("_encode", "_poll", "_reader", "bad_frame", "log_eof", "logr", "sock", "timed_out")

    def __init__(self, sock: socket.socket, logr: int, *, packets: bool = False) -> None:
        # Non-blocking both: the wait loop below reads whatever poll reported and never blocks
        # past a deadline on a guest that stops mid-frame or mid-line.
        sock.setblocking(False)
        os.set_blocking(logr, False)
        self.sock = sock
        self.logr = logr
        self.log_eof = False
        self.timed_out = False
        self.bad_frame: str | None = None
        self._reader = PacketReader() if packets else FrameReader()
        self._encode = encode_packet if packets else encode
        self._poll: select.poll | None = None

    def close(self) -> None:
        """Close both descriptors. Idempotent; the owner calls it once the guest is gone (or
        being killed): a pipe closed early only makes the guest's next print fail."""
        self.sock.close()  # a socket object: a second close is a no-op
        self._poll = None
        if self.logr >= 0:
            os.close(self.logr)
            self.logr = -1

    def send_now(self, message: dict[str, Any]) -> None:
        """Send a small control message (`init`) whole. It fits the socket buffer of a guest
        that is waiting for it; a guest that is gone raises OSError."""
        self.sock.sendall(self._encode(message))

    def send(self, frame: bytes, deadline: float) -> None:
        """Send on the non-blocking socket. A frame larger than the socket buffer (a big event)
        is sent as the guest reads it; a guest that stops reading cannot hold us past the
        deadline (the wait that follows then reports the timeout)."""
        view = memoryview(frame)
        while view:
            try:
                view = view[self.sock.send(view):]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                # poll, not select: the socket may be above descriptor 1,024 on a busy server
                writable = select.poll()
                writable.register(self.sock.fileno(), select.POLLOUT)
                writable.poll(left * 1000)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # The guest's end is closed: its process is gone. If not one byte went out, the
                # guest saw nothing of this invocation, so it may run elsewhere; a guest that
                # died mid-frame is left to the caller's wait (EOF, then why it died).
                if len(view) == len(frame):
                    raise EnvironmentGone(
                        f"the environment's process exited while idle ({exc.strerror})") from None
                raise

    def _poller(self) -> select.poll:
        """One poll object per channel, made on first use: registering two descriptors per
        invocation cost more than the rest of the host's side of a warm invoke (decision 037)."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self.sock.fileno(), select.POLLIN)
            if not self.log_eof:
                self._poll.register(self.logr, select.POLLIN)
        return self._poll

    def wait(self, deadline: float, logs: bytearray | None = None) -> dict | None:
        """Wait for the next message, draining the log pipe into `logs` meanwhile (None: read
        and dropped). None on EOF, deadline (sets timed_out) or a message that breaks the
        protocol (sets bad_frame)."""
        self.bad_frame = None
        poller = self._poller()
        sock = self.sock
        sock_fd = sock.fileno()
        reader = self._reader
        polled = False  # whether the frames in the reader came with a poll of both descriptors
        try:
            while True:
                msg = reader.next()
                if msg is not None:
                    # Lines printed before the reply are in the pipe: the guest flushes before
                    # it replies, so the poll that saw the reply saw them too (and drained
                    # them below). Only a frame read without such a poll needs a drain here.
                    if not polled:
                        self.drain_log(logs)
                    return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.timed_out = True
                    return None
                polled = True
                for fd, _events in poller.poll(max(1, int(remaining * 1000 + 0.999))):
                    if fd != sock_fd:
                        self.drain_log(logs)
                        continue
                    try:
                        data = sock.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self.drain_log(logs)
                        return None
                    reader.feed(data)
        except ProtocolError as exc:
            self.bad_frame = str(exc)
            return None

    def drain_log(self, logs: bytearray | None) -> int:
        """Read what the pipe holds; returns the bytes dropped. Bytes over MAX_LOG_BYTES are
        read and dropped (memory stays bounded whatever the guest prints); a marker notes it
        once."""
        dropped = 0
        while True:
            try:
                chunk = os.read(self.logr, 1 << 16)
            except (BlockingIOError, OSError):
                return dropped
            if not chunk:
                # EOF: the guest closed its stdout/stderr but may run on. A pipe at EOF polls
                # readable forever, so stop watching it or the wait loop would spin.
                if self._poll is not None and not self.log_eof:
                    self._poll.unregister(self.logr)
                self.log_eof = True
                return dropped
            if logs is None:
                continue
            room = MAX_LOG_BYTES - len(logs)
            if room > 0:
                logs += chunk[:room]
            # (found by tests/security) mark the cut even when the log filled up
            # exactly at a chunk boundary; after the marker nothing more is appended.
            if len(chunk) > max(room, 0) and not logs.endswith(_TRUNCATED):
                logs += _TRUNCATED
            dropped += max(0, len(chunk) - max(room, 0))
