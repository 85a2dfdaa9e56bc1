"""Host side of the guest protocol: msgpack maps over a socketpair; the host's only codec.

Frame = 4-byte big-endian unsigned length, then that many bytes of one msgpack map with string
keys (a stream socket: plain environments and forked children). The Python zygote's control
socket is SOCK_SEQPACKET instead: one map per packet, no length word (`encode_packet`,
`PacketReader`, `decode`). The guest's stdout and stderr are a separate pipe, so nothing a guest prints can corrupt
this channel. The full message catalogue is in docs/guest-protocol.md; in short::

    guest -> host  {"t": "hello", "pid": int}                       interpreter is up
    host  -> guest {"t": "init", "warmup": bool}                    limits applied: run init;
                                                                    warmup only for spares
    guest -> host  {"t": "ready", "init_ms": float}                 or
                   {"t": "init_error", "error": {...}, "init_ms": float}
    host  -> guest {"t": "invoke", "id": str, "payload": bytes, "deadline_ms": int,
                    "ctx": {...}, "trace": str}                     ctx only when changed,
                                                                    trace only when traced
    guest -> host  {"t": "chunk", "id": str, "payload": bytes}     zero or more, only when
                                                                    the invoke had "stream"
    guest -> host  {"t": "result", "id": str, "payload": bytes, "maxrss_kb": int,
                    "streamed": bool}                                or
                   {"t": "error",  "id": str, "error": {...}, "maxrss_kb": int, "fatal": bool}

An invoke frame with `"stream": true` (InvokeWithResponseStream, decision 075) lets a guest
whose handler streams its response send each write as a `chunk` frame as it happens, then a
`result` with an empty payload and `streamed` set. Guests that cannot stream ignore the flag
and answer with a whole `result`.

Guests implement the same framing with their own small msgpack codec (the Python and Node
bootstraps use no third-party packages); tests check both against the `msgpack` package.

Frames from the host to a Python guest may instead carry `marshal` (MARSHAL_FLAG set in the
length word): the guest runs the same interpreter as the host, and marshal.loads is one C call
where the guest's pure-Python msgpack decoder was the largest part of its per-invocation work.
marshal is not safe against hostile input, which is why it only ever flows host -> guest: the
host decodes guest frames with msgpack alone, and a length word with the flag set is beyond
MAX_FRAME, so FrameReader refuses it.
"""

from __future__ import annotations

import marshal
import socket
import struct
from collections import deque
from typing import Any

import msgpack

from runner.errors import ProtocolError

HEADER = struct.Struct(">I")
MAX_FRAME = 16 * 1024 * 1024  # > 6 MB payload + error documents; a bigger frame is a bug or hostile
MARSHAL_FLAG = 1 << 31  # in the length word of a host -> Python guest frame: body is marshal


def encode(message: dict[str, Any]) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def encode_marshal(message: dict[str, Any]) -> bytes:
    """A host -> Python guest frame in marshal (see the module docstring for why and when)."""
    body = marshal.dumps(message)
    return HEADER.pack(len(body) | MARSHAL_FLAG) + body


def encode_packet(message: dict[str, Any]) -> bytes:
    """One SOCK_SEQPACKET packet: the map alone, the packet boundary is its length."""
    return msgpack.packb(message, use_bin_type=True)


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(encode(message))


def decode(body: bytes) -> dict[str, Any]:
    """One msgpack map with a string "t" key, from bytes a guest chose. Raises ProtocolError."""
    try:
        msg = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except msgpack.FormatError:
        # msgpack's C decoder raises this with no text, and only for 0xc1, the one byte the
        # format never uses: name it, so the error says what the guest sent.
        raise ProtocolError("undecodable frame: byte 0xc1 is not msgpack") from None
    except Exception as exc:  # malformed bytes from a hostile guest
        raise ProtocolError(f"undecodable frame: {exc}") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise ProtocolError("frame is not a map with a string 't' key")
    return msg


class FrameReader:
    """Incremental frame decoder for a non-blocking or blocking socket.

    `feed()` takes whatever bytes arrived; `next()` returns a complete message or None. This
    shape lets the host multiplex the protocol socket with the log pipe in one select loop.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> dict[str, Any] | None:
        if len(self._buf) < HEADER.size:
            return None
        (n,) = HEADER.unpack_from(self._buf)
        if n > MAX_FRAME:
            raise ProtocolError(f"frame of {n} bytes exceeds the {MAX_FRAME}-byte limit")
        if len(self._buf) < HEADER.size + n:
            return None
        body = bytes(self._buf[HEADER.size : HEADER.size + n])
        del self._buf[: HEADER.size + n]
        msg = decode(body)
        _check_fields(msg)
        return msg


class PacketReader:
    """FrameReader's counterpart for a SOCK_SEQPACKET socket: each `feed()` is one whole packet
    (one map), so GuestChannel waits on either kind of socket the same way."""

    def __init__(self) -> None:
        self._packets: deque[bytes] = deque()

    def feed(self, data: bytes) -> None:
        self._packets.append(data)

    def next(self) -> dict[str, Any] | None:
        if not self._packets:
            return None
        msg = decode(self._packets.popleft())
        _check_fields(msg)
        return msg


# The type of each field the host reads from a guest frame. A frame breaking one is refused
# here, once, so no reader has to guard against a guest-chosen type (a payload given as an int
# N would otherwise allocate N bytes in the host).
_NUMBER = (int, float)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "payload": (bytes, type(None)), "error": (dict, type(None)),
    "maxrss_kb": (int,), "pid": (int,), "init_ms": _NUMBER,
    "fatal": (bool,), "forkable": (bool,), "forked": (bool,), "streamed": (bool,),
}


# The exact types msgpack decodes each field to when it is right (no subclass: bool is not an
# int here), and the fields that must not be negative: the check of every reply's fields is
# then one set lookup each; anything else takes the general check below.
_EXACT: dict[str, frozenset] = {
    key: frozenset(t for t in types if t is not bool or bool in types) for key, types in
    _FIELD_TYPES.items()}
_NON_NEGATIVE = frozenset(("maxrss_kb", "pid"))


def _check_fields(msg: dict[str, Any]) -> None:
    # Over the frame's few keys rather than the table's ten: this runs on every reply.
    for key, value in msg.items():
        exact = _EXACT.get(key)
        if exact is None:
            continue
        if type(value) not in exact:
            types = _FIELD_TYPES[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise ProtocolError(f"field {key!r} is a {type(value).__name__}")
        if key in _NON_NEGATIVE and value < 0:
            raise ProtocolError(f"field {key!r} is negative")
    doc = msg.get("error")
    if doc is not None and not isinstance(doc.get("stackTrace", []), (list, str, type(None))):
        raise ProtocolError("field 'error.stackTrace' is neither a list nor a string")


def recv_blocking(sock: socket.socket, reader: FrameReader) -> dict[str, Any]:
    """Read until one whole message arrives (socket timeout applies)."""
    while True:
        msg = reader.next()
        if msg is not None:
            return msg
        data = sock.recv(1 << 16)
        if not data:
            raise ProtocolError("guest closed the channel")
        reader.feed(data)
