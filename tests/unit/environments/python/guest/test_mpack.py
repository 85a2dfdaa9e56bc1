import math

import msgpack
import pytest

from runner.environments.python.guest import _mpack

VALUES = [
    None, True, False, 0, 1, 127, 128, 255, 65535, 2**32, 2**64 - 1, -1, -32, -33, -2**31, -2**63,
    0.5, -1.25e300, math.inf, "", "a" * 31, "é" * 40, "x" * 70000, b"", b"\x00\xff" * 100,
    [], [1, [2, [3]]], list(range(20)), {}, {"t": "invoke", "payload": b"{}", "ctx": {"n": 1}},
    {str(i): i for i in range(20)},
]


@pytest.mark.parametrize("value", VALUES)
def test_matches_msgpack_both_ways(value):
    ours = _mpack.packb(value)
    assert msgpack.unpackb(ours, raw=False, strict_map_key=False) == value
    theirs = msgpack.packb(value, use_bin_type=True)
    assert _mpack.unpackb(theirs) == value


def test_float32_from_msgpack():
    assert _mpack.unpackb(msgpack.packb(1.5, use_single_float=True)) == 1.5


def test_rejects_unsupported_and_trailing():
    with pytest.raises(TypeError):
        _mpack.packb(object())
    with pytest.raises(ValueError):
        _mpack.unpackb(b"\xc0\xc0")
    with pytest.raises(OverflowError):
        _mpack.packb(2**64)


def test_subclasses_and_buffers_pack_as_their_plain_types():
    import collections

    class Name(str):
        pass

    value = {Name("k"): [bytearray(b"ab"), memoryview(b"cd")], "o": collections.OrderedDict(x=1)}
    assert msgpack.unpackb(_mpack.packb(value), raw=False) == {"k": [b"ab", b"cd"], "o": {"x": 1}}


def test_zygote_packets_cross_between_the_guest_codec_and_the_hosts():
    # The zygote speaks _mpack, the host frames.py (msgpack): one map per SOCK_SEQPACKET packet.
    from runner.environments.process import frames

    sent = {"t": "exited", "pid": 12, "status": -9, "maxrss_kb": 4096}
    assert frames.decode(_mpack.packb(sent)) == sent
    reader = frames.PacketReader()
    reader.feed(_mpack.packb({"t": "ready", "init_ms": 3.5, "forkable": True, "maxrss_kb": 9}))
    assert reader.next() == {"t": "ready", "init_ms": 3.5, "forkable": True, "maxrss_kb": 9}
    assert _mpack.unpackb(frames.encode_packet({"t": "fork", "seq": 3})) == {"t": "fork", "seq": 3}
