"""GuestChannel on its own: a socketpair and a pipe standing in for a guest."""

import os
import socket
import time

import pytest

from runner.environments.process import channel
from runner.environments.process.channel import GuestChannel
from runner.environments.process.frames import encode, encode_packet
from runner.errors import EnvironmentGone


def pair(packets=False):
    kind = socket.SOCK_SEQPACKET if packets else socket.SOCK_STREAM
    host, guest = socket.socketpair(socket.AF_UNIX, kind)
    logr, logw = os.pipe()
    return GuestChannel(host, logr, packets=packets), guest, logw


def test_a_reply_comes_with_the_lines_printed_before_it():
    chan, guest, logw = pair()
    try:
        os.write(logw, b"line one\n")
        guest.sendall(encode({"t": "result", "id": "r", "payload": b"1"}))
        logs = bytearray()
        msg = chan.wait(time.monotonic() + 2, logs)
        assert msg == {"t": "result", "id": "r", "payload": b"1"} and bytes(logs) == b"line one\n"
        assert not chan.timed_out and chan.bad_frame is None
    finally:
        chan.close(), guest.close(), os.close(logw)


def test_deadline_eof_and_a_bad_frame_are_told_apart():
    chan, guest, logw = pair()
    try:
        assert chan.wait(time.monotonic() + 0.05) is None and chan.timed_out
        guest.sendall(b"\x00\x00\x00\x01\xc1")
        assert chan.wait(time.monotonic() + 2) is None and "0xc1" in chan.bad_frame
    finally:
        chan.close(), guest.close(), os.close(logw)
    chan, guest, logw = pair()
    guest.close()
    try:
        assert chan.wait(time.monotonic() + 2) is None
        assert not chan.timed_out and chan.bad_frame is None  # EOF: the guest is gone
    finally:
        chan.close(), os.close(logw)


def test_packets_carry_one_message_each_and_logs_are_read_meanwhile():
    # The zygote's control socket: SOCK_SEQPACKET, no length word.
    chan, guest, logw = pair(packets=True)
    try:
        chan.send_now({"t": "init"})
        assert guest.recv(1 << 16) == encode_packet({"t": "init"})
        os.write(logw, b"importing\n")
        guest.send(encode_packet({"t": "ready", "init_ms": 1.5, "forkable": True}))
        logs = bytearray()
        assert chan.wait(time.monotonic() + 2, logs) == {"t": "ready", "init_ms": 1.5, "forkable": True}
        assert bytes(logs) == b"importing\n"
    finally:
        chan.close(), guest.close(), os.close(logw)


def test_the_log_is_bounded_and_marked(monkeypatch):
    monkeypatch.setattr(channel, "MAX_LOG_BYTES", 10)
    chan, guest, logw = pair()
    try:
        os.write(logw, b"x" * 100)
        logs = bytearray()
        assert chan.drain_log(logs) == 90
        assert logs.startswith(b"x" * 10) and logs.endswith(channel._TRUNCATED)
        assert b"log truncated" in channel._TRUNCATED
    finally:
        chan.close(), guest.close(), os.close(logw)


def test_sending_to_a_guest_that_is_gone_is_environment_gone():
    chan, guest, logw = pair()
    guest.close()
    try:
        with pytest.raises(EnvironmentGone, match="exited while idle"):
            chan.send(encode({"t": "invoke", "id": "r", "payload": b"{}"}), time.monotonic() + 1)
    finally:
        chan.close(), os.close(logw)


def test_close_releases_both_descriptors_once():
    chan, guest, logw = pair()
    sock_fd, log_fd = chan.sock.fileno(), chan.logr
    chan.close()
    chan.close()  # idempotent: a second close must not hit a descriptor reused since
    for fd in (sock_fd, log_fd):
        with pytest.raises(OSError):
            os.fstat(fd)
    guest.close(), os.close(logw)
