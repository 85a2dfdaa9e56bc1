"""The host's end of one guest's channel and log pipe (ProcessEnvironment inherits it).

A guest talks over a non-blocking socketpair (frames, protocol.py) and prints on a pipe. The
host waits on both with one poll object per environment, so a reply and the log lines printed
before it are collected together, and a guest printing without end cannot grow our memory
(MAX_LOG_BYTES per invocation, the rest read and dropped with one marker).

`GuestChannel` is a mixin: the class using it owns the descriptors and sets `_sock` (the socket,
non-blocking), `_logr` (the pipe's read end, non-blocking), `_reader` (a protocol.FrameReader),
`_poll` (None until first use), `_log_eof` and `_timed_out`.
"""

from __future__ import annotations

import os
import select
import time

from runner.errors import EnvironmentGone, ProtocolError

MAX_LOG_BYTES = 1024 * 1024  # per invocation; Lambda truncates huge outputs too
_TRUNCATED = b"\n[runner] log truncated: output over 1 MiB per invocation dropped\n"


class GuestChannel:
    """Frame send/receive and log draining for one guest process (see the module docstring)."""

    # Why the last wait ended without a frame because the guest broke the protocol (an
    # undecodable or oversized frame, a field of the wrong type); None otherwise.
    _bad_frame: str | None = None

    def _send_frame(self, frame: bytes, deadline: float) -> None:
        """Send on the non-blocking socket. A frame larger than the socket buffer (a big event)
        is sent as the guest reads it; a guest that stops reading cannot hold us past the
        deadline (the wait that follows then reports the timeout)."""
        view = memoryview(frame)
        while view:
            try:
                view = view[self._sock.send(view):]
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                select.select([], [self._sock], [], left)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # The guest's end is closed: its process is gone. If not one byte went out, the
                # guest saw nothing of this invocation, so it may run elsewhere; a guest that
                # died mid-frame is left to the caller's wait (EOF, then why it died).
                if len(view) == len(frame):
                    raise EnvironmentGone(f"the environment's process exited while idle ({exc.strerror})") from None
                raise

    def _poller(self) -> select.poll:
        """One poll object per environment, made on first use: registering two descriptors per
        invocation cost more than the rest of the host's side of a warm invoke."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self._sock.fileno(), select.POLLIN)
            self._poll.register(self._logr, select.POLLIN)
        return self._poll

    def _wait_message(self, deadline: float, logs: bytearray | None = None) -> dict | None:
        """Wait for the next frame, draining the log pipe meanwhile. None on EOF, deadline
        (sets _timed_out) or a frame that breaks the protocol (sets _bad_frame)."""
        self._bad_frame = None
        poller = self._poller()
        sock_fd = self._sock.fileno()
        polled = False  # whether the frames in the reader came with a poll of both descriptors
        try:
            while True:
                msg = self._reader.next()
                if msg is not None:
                    # Lines printed before the reply are in the pipe: the guest flushes before
                    # it replies, so the poll that saw the reply saw them too (and drained
                    # them below). Only a frame read without such a poll needs a drain here.
                    if not polled:
                        self._drain_log(logs)
                    return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._timed_out = True
                    return None
                polled = True
                for fd, _events in poller.poll(max(1, int(remaining * 1000 + 0.999))):
                    if fd != sock_fd:
                        self._drain_log(logs)
                        continue
                    try:
                        data = self._sock.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self._drain_log(logs)
                        return None
                    self._reader.feed(data)
        except ProtocolError as exc:
            self._bad_frame = str(exc)
            return None

    def _drain_log(self, logs: bytearray | None) -> int:
        """Read what the pipe holds. Bytes over MAX_LOG_BYTES are read and dropped (memory stays
        bounded whatever the guest prints); a marker notes it once."""
        dropped = 0
        while True:
            try:
                chunk = os.read(self._logr, 1 << 16)
            except (BlockingIOError, OSError):
                return dropped
            if not chunk:
                # EOF: the guest closed its stdout/stderr but may run on. A pipe at EOF polls
                # readable forever, so stop watching it or the wait loop would spin.
                if self._poll is not None and not self._log_eof:
                    self._poll.unregister(self._logr)
                self._log_eof = True
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
