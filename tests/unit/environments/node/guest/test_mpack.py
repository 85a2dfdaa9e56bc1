"""The Node bootstrap's msgpack codec (runner/environments/node/guest/node_mpack.js) against Python's msgpack."""

from __future__ import annotations

import json
import subprocess

import msgpack
import pytest

from runner.environments.node.process_policy import MPACK, find_node

CODEC = MPACK

# Decode stdin with the JS codec, re-encode, write stdout: Python -> JS -> Python.
ROUNDTRIP_JS = f"""
const m = require({json.dumps(CODEC)});
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => process.stdout.write(m.encode(m.decode(Buffer.concat(chunks)))));
"""

# Values built in JS, encoded by the JS codec, decoded by Python.
FROM_JS = f"""
const m = require({json.dumps(CODEC)});
process.stdout.write(m.encode({{
  nil: null, undef: undefined, t: true, f: false,
  small: 5, negfix: -7, u8: 200, u16: 60000, u32: 4000000000, big: 2 ** 40, neg: -129,
  neg64: -(2 ** 40), bigint: 18446744073709551615n, float: 0.1, nan: NaN,
  s: 'héllo', long: 'x'.repeat(70000), bin: Buffer.from([0, 1, 255]),
  list: [1, 'two', [3]], many: Array.from({{ length: 20 }}, (_, i) => i),
  nested: {{ a: {{ b: {{}} }} }},
}}));
"""

SAMPLES = [
    None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1,
    2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**63),
    0.5, -1.25e300, "", "a", "x" * 31, "y" * 32, "z" * 255, "w" * 256, "é" * 40000, "\u2603",
    b"", b"\x00\xff", b"b" * 300, b"c" * 70000,
    [], [1, [2, [3]]], list(range(16)), list(range(70000)),
    {}, {"t": "invoke", "id": "r1", "payload": b'{"a":1}', "ctx": {"deadline_ms": 1700000000000}},
    {f"k{i}": i for i in range(17)},
]


@pytest.fixture(scope="module")
def node() -> str:
    path = find_node()
    assert path is not None, "these tests need a `node` binary on PATH (Node 20)"
    return path


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__ + str(len(repr(v))))
def test_python_to_js_and_back(node, value):
    packed = msgpack.packb(value, use_bin_type=True)
    out = subprocess.run([node, "-e", ROUNDTRIP_JS], input=packed, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    assert msgpack.unpackb(out.stdout, raw=False, strict_map_key=False) == value


def test_js_to_python(node):
    out = subprocess.run([node, "-e", FROM_JS], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    got = msgpack.unpackb(out.stdout, raw=False)
    nan = got.pop("nan")
    assert nan != nan  # NaN survives as a float64
    assert got == {
        "nil": None, "undef": None, "t": True, "f": False,
        "small": 5, "negfix": -7, "u8": 200, "u16": 60000, "u32": 4000000000, "big": 2**40,
        "neg": -129, "neg64": -(2**40), "bigint": 2**64 - 1, "float": 0.1,
        "s": "héllo", "long": "x" * 70000, "bin": b"\x00\x01\xff",
        "list": [1, "two", [3]], "many": list(range(20)), "nested": {"a": {"b": {}}},
    }


@pytest.mark.parametrize("bad", [b"\xc1", b"\xa5ab", b"\x92\x01", b"\x01\x02", b"\xd4\x00\x00"])
def test_js_rejects_malformed_input(node, bad):
    out = subprocess.run([node, "-e", ROUNDTRIP_JS], input=bad, capture_output=True, timeout=30)
    assert out.returncode != 0
    assert b"msgpack" in out.stderr
