import socket

import msgpack
import pytest

from runner.environments.process import frames
from runner.environments.process.frames import MAX_FRAME, FrameReader, encode, recv_blocking, send
from runner.errors import ProtocolError


def test_frames_split_across_reads():
    data = encode({"t": "a", "n": 1}) + encode({"t": "b", "payload": b"x" * 1000})
    r = FrameReader()
    got = []
    for i in range(0, len(data), 7):
        r.feed(data[i:i + 7])
        while (m := r.next()) is not None:
            got.append(m)
    assert [m["t"] for m in got] == ["a", "b"] and got[1]["payload"] == b"x" * 1000


def test_oversized_frame_is_refused():
    r = FrameReader()
    r.feed((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(ProtocolError, match="exceeds"):
        r.next()


@pytest.mark.parametrize("body", [b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"t": 5})])
def test_malformed_frames(body):
    r = FrameReader()
    r.feed(len(body).to_bytes(4, "big") + body)
    with pytest.raises(ProtocolError):
        r.next()


def test_send_and_recv_over_socketpair():
    a, b = socket.socketpair()
    with a, b:
        send(a, {"t": "hello", "pid": 42})
        assert recv_blocking(b, FrameReader()) == {"t": "hello", "pid": 42}
        a.close()
        with pytest.raises(ProtocolError, match="closed"):
            recv_blocking(b, FrameReader())


def test_marshal_frames_are_flagged_and_never_accepted_from_a_guest():
    frame = frames.encode_marshal({"t": "invoke", "id": "r", "payload": b"{}"})
    (word,) = frames.HEADER.unpack_from(frame)
    assert word & frames.MARSHAL_FLAG and (word & ~frames.MARSHAL_FLAG) == len(frame) - 4
    # The host's reader is for guest frames: a flagged length is beyond MAX_FRAME, refused
    # before a byte of the body is decoded (marshal is unsafe with hostile input).
    reader = frames.FrameReader()
    reader.feed(frame)
    with pytest.raises(ProtocolError):
        reader.next()


@pytest.mark.parametrize("fields,why", [
    ({"t": "result", "id": "r", "payload": "text"}, "'payload' is a str"),
    ({"t": "result", "id": "r", "payload": 1 << 40}, "'payload' is a int"),  # not bytes(N)
    ({"t": "result", "id": 7, "payload": b"1"}, "'id' is a int"),
    ({"t": "result", "id": "r", "payload": b"1", "maxrss_kb": "lots"}, "'maxrss_kb' is a str"),
    ({"t": "result", "id": "r", "payload": b"1", "maxrss_kb": -1}, "'maxrss_kb' is negative"),
    ({"t": "result", "id": "r", "payload": b"1", "maxrss_kb": True}, "'maxrss_kb' is a bool"),
    ({"t": "error", "id": "r", "error": "boom"}, "'error' is a str"),
    ({"t": "error", "id": "r", "error": {"stackTrace": 5}}, "'error.stackTrace'"),
    ({"t": "error", "id": "r", "error": {}, "fatal": "yes"}, "'fatal' is a str"),
    ({"t": "result", "id": "r", "payload": b"", "streamed": 1}, "'streamed' is a int"),
    ({"t": "chunk", "id": "r", "payload": "text"}, "'payload' is a str"),
])
def test_fields_of_the_wrong_type_are_refused_at_the_frame(fields, why):
    # A guest chooses every byte of its frames: the host reads no field it has not type-checked.
    r = FrameReader()
    r.feed(encode(fields))
    with pytest.raises(ProtocolError, match=why):
        r.next()


def test_well_typed_replies_pass():
    r = FrameReader()
    ok = [{"t": "result", "id": "r", "payload": b"1", "maxrss_kb": 10},
          {"t": "error", "id": "r", "error": {"errorMessage": "m", "stackTrace": ["a"]}, "fatal": False},
          {"t": "ready", "init_ms": 1.5, "forkable": True}, {"t": "result", "id": "r", "payload": None},
          {"t": "chunk", "id": "r", "payload": b"part"},
          {"t": "result", "id": "r", "payload": b"", "streamed": True}]
    for msg in ok:
        r.feed(encode(msg))
        assert r.next() == msg


def test_packets_are_one_map_each_and_checked_like_frames():
    r = frames.PacketReader()
    assert r.next() is None
    r.feed(frames.encode_packet({"t": "hello", "pid": 7}))
    r.feed(frames.encode_packet({"t": "ready", "init_ms": 2.0, "forkable": False}))
    assert r.next() == {"t": "hello", "pid": 7} and r.next()["t"] == "ready" and r.next() is None
    for bad in (b"\xc1", msgpack.packb([1]), frames.encode_packet({"t": "hello", "pid": -1})):
        r.feed(bad)
        with pytest.raises(ProtocolError):
            r.next()


def test_decode_names_the_byte_msgpack_never_uses():
    # msgpack's C decoder says nothing for 0xc1; the guest's error must say what it sent.
    with pytest.raises(ProtocolError, match="0xc1"):
        frames.decode(b"\x81\xa1t\xc1")
