"""A small msgpack codec (stdlib only) for code that runs inside a sandbox.

The guest side of the frame protocol cannot import the `msgpack` package: sandboxes start with
`python -I -S`, so no site-packages are visible to guest code. This covers exactly the types the
protocol uses (nil, bool, int, float, str, bin, array, map) and is checked against `msgpack` in
tests/unit/environments/python/guest/test_mpack.py. The Python bootstrap and zygote import it
from their own folder; the host never does (it uses `msgpack`, process/frames.py).
"""

import struct

_pack_d = struct.Struct(">Bd").pack
_unpack_from = struct.unpack_from


def packb(obj):
    out = bytearray()
    _pack(obj, out)
    return bytes(out)


def _pack(o, out):
    t = type(o)
    # Exact types first, in the order reply frames use them (keys, ids, payload, flags): the
    # generic isinstance chain below handles everything else, subclasses included.
    if t is str:
        b = o.encode("utf-8", "surrogatepass")
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        else:
            out += b"\xdb" + n.to_bytes(4, "big")
        out += b
    elif t is bytes:
        out += b"\xc6" + len(o).to_bytes(4, "big")
        out += o
    elif t is dict:
        out += b"\xdf" + len(o).to_bytes(4, "big")
        for k, v in o.items():
            _pack(k, out)
            _pack(v, out)
    else:
        _pack_other(o, out)


def _pack_other(o, out):
    if o is None:
        out.append(0xC0)
    elif o is True:
        out.append(0xC3)
    elif o is False:
        out.append(0xC2)
    elif isinstance(o, int):
        if 0 <= o < 0x80:
            out.append(o)
        elif -32 <= o < 0:
            out.append(o & 0xFF)
        elif 0 <= o < 1 << 64:
            out += b"\xcf" + o.to_bytes(8, "big")
        elif -(1 << 63) <= o < 0:
            out += b"\xd3" + o.to_bytes(8, "big", signed=True)
        else:
            raise OverflowError("integer out of msgpack range")
    elif isinstance(o, float):
        out += _pack_d(0xCB, o)
    elif isinstance(o, str):  # a str subclass: packed as the plain str it holds
        _pack(str.__str__(o), out)
    elif isinstance(o, (bytes, bytearray, memoryview)):
        _pack(bytes(o), out)
    elif isinstance(o, (list, tuple)):
        out += b"\xdd" + len(o).to_bytes(4, "big")
        for x in o:
            _pack(x, out)
    elif isinstance(o, dict):  # a dict subclass
        _pack(dict(o), out)
    else:
        raise TypeError("cannot msgpack %s" % type(o).__name__)


def unpackb(data):
    # bytes, not a memoryview: slicing bytes and calling .decode() is the cheapest way to
    # a str in CPython, and the decoder runs once per invocation inside every guest.
    if not isinstance(data, bytes):
        data = bytes(data)
    obj, pos = _unpack(data, 0)
    if pos != len(data):
        raise ValueError("extra bytes after msgpack object")
    return obj


def _unpack(m, p):
    b = m[p]
    p += 1
    # Ordered by how often each type occurs in protocol frames: fixstr first (keys, ids).
    if 0xA0 <= b <= 0xBF:
        e = p + (b & 0x1F)
        return m[p:e].decode("utf-8", "surrogatepass"), e
    if b <= 0x7F:
        return b, p
    if b <= 0x8F:
        return _map(m, p, b & 0x0F)
    if b <= 0x9F:
        return _arr(m, p, b & 0x0F)
    if b >= 0xE0:
        return b - 0x100, p
    if b == 0xC0:
        return None, p
    if b == 0xC2:
        return False, p
    if b == 0xC3:
        return True, p
    if b in (0xC4, 0xC5, 0xC6):
        w = 1 << (b - 0xC4)
        n = int.from_bytes(m[p : p + w], "big")
        p += w
        return m[p : p + n], p + n
    if b == 0xCA:
        return _unpack_from(">f", m, p)[0], p + 4
    if b == 0xCB:
        return _unpack_from(">d", m, p)[0], p + 8
    if 0xCC <= b <= 0xCF:
        w = 1 << (b - 0xCC)
        return int.from_bytes(m[p : p + w], "big"), p + w
    if 0xD0 <= b <= 0xD3:
        w = 1 << (b - 0xD0)
        return int.from_bytes(m[p : p + w], "big", signed=True), p + w
    if b in (0xD9, 0xDA, 0xDB):
        w = 1 << (b - 0xD9)
        n = int.from_bytes(m[p : p + w], "big")
        p += w
        return m[p : p + n].decode("utf-8", "surrogatepass"), p + n
    if b in (0xDC, 0xDD):
        w = 2 if b == 0xDC else 4
        return _arr(m, p + w, int.from_bytes(m[p : p + w], "big"))
    if b in (0xDE, 0xDF):
        w = 2 if b == 0xDE else 4
        return _map(m, p + w, int.from_bytes(m[p : p + w], "big"))
    raise ValueError("unsupported msgpack byte 0x%02x" % b)


def _arr(m, p, n):
    out = []
    for _ in range(n):
        v, p = _unpack(m, p)
        out.append(v)
    return out, p


def _map(m, p, n):
    out = {}
    for _ in range(n):
        # Keys (and most values) of protocol frames are short strings: decoded inline here
        # rather than through _unpack, which halves the Python calls per frame.
        b = m[p]
        if 0xA0 <= b <= 0xBF:
            e = p + 1 + (b & 0x1F)
            k = m[p + 1 : e].decode("utf-8", "surrogatepass")
            p = e
        else:
            k, p = _unpack(m, p)
        b = m[p]
        if 0xA0 <= b <= 0xBF:
            e = p + 1 + (b & 0x1F)
            out[k] = m[p + 1 : e].decode("utf-8", "surrogatepass")
            p = e
        else:
            out[k], p = _unpack(m, p)
    return out, p
