'use strict';
// A small msgpack codec for the Node.js bootstrap (no npm packages exist inside a sandbox).
//
// Covers exactly what the host<->guest protocol carries (runner/environments/process/frames.py):
// nil, booleans, integers, float64, UTF-8 strings, binary (Buffer/Uint8Array), arrays and maps
// with string keys. It is checked against Python's `msgpack` package both ways in
// tests/unit/environments/node/guest/test_mpack.py. Integers beyond 2^53 decode to BigInt so no
// value is silently rounded; the encoder accepts BigInt within the 64-bit ranges.

const MAX_U32 = 0xffffffff;

function encode(value) {
  const parts = [];
  let size = 0;
  const push = (buf) => { parts.push(buf); size += buf.length; };
  const head = (byte, n, width) => {
    const b = Buffer.allocUnsafe(1 + width);
    b[0] = byte;
    if (width === 1) b.writeUInt8(n, 1);
    else if (width === 2) b.writeUInt16BE(n, 1);
    else if (width === 4) b.writeUInt32BE(n, 1);
    push(b);
  };
  const sized = (n, fix, fixMax, base, widths) => {
    // base is the 8-bit form's type byte; the 16- and 32-bit forms follow it.
    if (fix !== null && n <= fixMax) { push(Buffer.from([fix | n])); return; }
    for (let i = 0; i < widths.length; i++) {
      const w = widths[i];
      if (n < 2 ** (8 * w)) { head(base + i, n, w); return; }
    }
    throw new RangeError(`msgpack: length ${n} exceeds 32 bits`);
  };
  const int64 = (v) => {
    const b = Buffer.allocUnsafe(9);
    if (v >= 0n) { b[0] = 0xcf; b.writeBigUInt64BE(v, 1); } else { b[0] = 0xd3; b.writeBigInt64BE(v, 1); }
    push(b);
  };
  const walk = (v) => {
    if (v === null || v === undefined) { push(Buffer.from([0xc0])); return; }
    if (v === true) { push(Buffer.from([0xc3])); return; }
    if (v === false) { push(Buffer.from([0xc2])); return; }
    if (typeof v === 'number') {
      if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) {
        if (v >= 0 && v < 0x80) push(Buffer.from([v]));
        else if (v < 0 && v >= -32) push(Buffer.from([v & 0xff]));
        else if (v >= 0 && v <= MAX_U32) head(0xce, v, 4);
        else int64(BigInt(v));
        return;
      }
      const b = Buffer.allocUnsafe(9);
      b[0] = 0xcb;
      b.writeDoubleBE(v, 1);
      push(b);
      return;
    }
    if (typeof v === 'bigint') {
      if (v < -(2n ** 63n) || v >= 2n ** 64n) throw new RangeError('msgpack: integer out of 64-bit range');
      int64(v);
      return;
    }
    if (typeof v === 'string') {
      const b = Buffer.from(v, 'utf8');
      sized(b.length, 0xa0, 31, 0xd9, [1, 2, 4]);
      push(b);
      return;
    }
    if (v instanceof Uint8Array) {
      sized(v.length, null, 0, 0xc4, [1, 2, 4]);
      push(Buffer.from(v.buffer, v.byteOffset, v.length));
      return;
    }
    if (Array.isArray(v)) {
      if (v.length < 16) push(Buffer.from([0x90 | v.length]));
      else sized(v.length, null, 0, 0xdc, [2, 4]);
      for (const x of v) walk(x);
      return;
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v);
      if (keys.length < 16) push(Buffer.from([0x80 | keys.length]));
      else sized(keys.length, null, 0, 0xde, [2, 4]);
      for (const k of keys) { walk(k); walk(v[k]); }
      return;
    }
    throw new TypeError(`msgpack: cannot encode a ${typeof v}`);
  };
  walk(value);
  return Buffer.concat(parts, size);
}

function decode(buf) {
  let p = 0;
  const need = (n) => {
    if (p + n > buf.length) throw new RangeError('msgpack: truncated input');
  };
  const str = (n) => { need(n); const s = buf.toString('utf8', p, p + n); p += n; return s; };
  const bin = (n) => { need(n); const b = Buffer.from(buf.subarray(p, p + n)); p += n; return b; };
  const uint = (w) => {
    need(w);
    let v;
    if (w === 1) v = buf.readUInt8(p);
    else if (w === 2) v = buf.readUInt16BE(p);
    else if (w === 4) v = buf.readUInt32BE(p);
    else { const big = buf.readBigUInt64BE(p); v = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big; }
    p += w;
    return v;
  };
  const sint = (w) => {
    need(w);
    let v;
    if (w === 1) v = buf.readInt8(p);
    else if (w === 2) v = buf.readInt16BE(p);
    else if (w === 4) v = buf.readInt32BE(p);
    else {
      const big = buf.readBigInt64BE(p);
      const safe = big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER);
      v = safe ? Number(big) : big;
    }
    p += w;
    return v;
  };
  const arr = (n) => { const out = new Array(n); for (let i = 0; i < n; i++) out[i] = item(); return out; };
  const map = (n) => {
    const out = {};
    for (let i = 0; i < n; i++) {
      const k = item();
      if (typeof k !== 'string') throw new TypeError('msgpack: map keys must be strings');
      out[k] = item();
    }
    return out;
  };
  const item = () => {
    need(1);
    const b = buf[p++];
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return map(b & 0x0f);
    if (b <= 0x9f) return arr(b & 0x0f);
    if (b <= 0xbf) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(uint(1));
      case 0xc5: return bin(uint(2));
      case 0xc6: return bin(uint(4));
      case 0xca: { need(4); const v = buf.readFloatBE(p); p += 4; return v; }
      case 0xcb: { need(8); const v = buf.readDoubleBE(p); p += 8; return v; }
      case 0xcc: return uint(1);
      case 0xcd: return uint(2);
      case 0xce: return uint(4);
      case 0xcf: return uint(8);
      case 0xd0: return sint(1);
      case 0xd1: return sint(2);
      case 0xd2: return sint(4);
      case 0xd3: return sint(8);
      case 0xd9: return str(uint(1));
      case 0xda: return str(uint(2));
      case 0xdb: return str(uint(4));
      case 0xdc: return arr(uint(2));
      case 0xdd: return arr(uint(4));
      case 0xde: return map(uint(2));
      case 0xdf: return map(uint(4));
      default: throw new TypeError(`msgpack: unsupported type byte 0x${b.toString(16)}`);
    }
  };
  const value = item();
  if (p !== buf.length) throw new RangeError('msgpack: extra bytes after the value');
  return value;
}

module.exports = { encode, decode };
