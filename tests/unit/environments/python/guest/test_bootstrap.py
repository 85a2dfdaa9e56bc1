"""The Python guest's side of the frame protocol (runner/environments/python/guest/python_bootstrap.py)."""

import importlib.util
import os
import socket
import sys

import pytest

from runner.environments.process import frames
from runner.environments.python.runtime import GUEST_DIR as RUNTIMES


@pytest.fixture(scope="module")
def boot():
    sys.path.insert(0, os.path.abspath(RUNTIMES))  # the bootstrap imports _mpack from its folder
    try:
        spec = importlib.util.spec_from_file_location("guest_bootstrap", os.path.join(RUNTIMES, "python_bootstrap.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(os.path.abspath(RUNTIMES))
    return mod


def test_channel_reads_msgpack_and_marshal_frames_in_any_split(boot):
    ours, theirs = socket.socketpair()
    chan = boot.Channel(theirs.detach())
    a = {"t": "init"}
    b = {"t": "invoke", "id": "r1", "payload": b'{"x": 1}', "deadline_ms": 2**41, "ctx": {"n": "f"}}
    data = frames.encode(a) + frames.encode_marshal(b) + frames.encode_marshal(a)
    ours.sendall(data[:3])  # a frame split inside its length word, then the rest at once
    ours.sendall(data[3:])
    assert [chan.recv(), chan.recv(), chan.recv()] == [a, b, a]
    ours.close()
    assert chan.recv() is None  # EOF
    chan.sock.close()


def test_guest_replies_stay_msgpack(boot):
    ours, theirs = socket.socketpair()
    chan = boot.Channel(theirs.detach())
    chan.send({"t": "result", "id": "r1", "payload": b"{}", "fatal": False})
    reader = frames.FrameReader()
    assert frames.recv_blocking(ours, reader) == {"t": "result", "id": "r1", "payload": b"{}",
                                                    "fatal": False}
    ours.close()
    chan.sock.close()
