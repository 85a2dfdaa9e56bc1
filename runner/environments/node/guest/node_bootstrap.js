'use strict';
// The Node.js runtime inside a sandbox: loads a Lambda handler and serves invocations.
//
// Started as `node [--max-old-space-size=N] node_bootstrap.js` (runner/environments/node/
// process_policy.py) with an environment the host builds from scratch (runner/environments/
// process/: no NODE_OPTIONS or other server variables). Talks to the host over the socket whose
// fd is in _RUNNER_FD with 4-byte big-endian length + msgpack frames
// (runner/environments/process/frames.py); stdout and stderr are the environment's log pipe.
//
// I/O model: the channel is read with blocking fs.readSync. Between invocations the process is
// therefore parked in read(2), running no timers: the same "freeze" Lambda applies between
// invocations. While a returned promise is pending a ref'd interval keeps the event loop alive,
// so a promise that never settles runs into the host's timeout instead of letting node exit;
// a callback-style handler instead waits for the loop to empty (node's `beforeExit`), as
// Lambda's runtime does (decision 045, which also says whose log late output lands in).
//
// The init phase waits for the host's `init` frame: by then the host has applied the
// environment's limits, so no user code runs unconstrained. Uses no npm packages.

const fs = require('fs');
const path = require('path');
const util = require('util');
const url = require('url');
// In a startup-snapshot bundle (runner/environments/node/snapshot_build.py) the codec is inlined
// and handed over through this global; otherwise it sits beside this file.
const mpack = globalThis.__runnerMpack || require('./node_mpack.js');

// Created on first use: a SharedArrayBuffer made at load time would end up in a startup snapshot.
let sleepCell = null;
function sleepMs(ms) {
  if (sleepCell === null) sleepCell = new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleepCell, 0, 0, ms);
}

function writeAll(fd, buf) {
  // fd 1/2 are pipes the host drains; a full pipe under O_NONBLOCK gives EAGAIN: wait 1 ms and
  // retry rather than lose log lines or a reply frame.
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN' && e.code !== 'EINTR') throw e;
      sleepMs(1);
    }
  }
}

const READ_CHUNK = 65536; // bytes asked of one read of the channel

class Channel {
  constructor(fd) {
    this.fd = fd;
    this.rbuf = Buffer.allocUnsafe(READ_CHUNK);
    this.pending = Buffer.alloc(0); // bytes read but not yet returned as a frame
  }

  // Make this.pending hold at least n bytes; false at EOF. One read usually brings a whole
  // frame, header and body (one system call per invocation, not two).
  fill(n) {
    while (this.pending.length < n) {
      const want = Math.max(n - this.pending.length, READ_CHUNK);
      const buf = want > READ_CHUNK ? Buffer.allocUnsafe(want) : this.rbuf;
      let got;
      try {
        got = fs.readSync(this.fd, buf, 0, want, null);
      } catch (e) {
        if (e.code !== 'EAGAIN' && e.code !== 'EINTR') throw e;
        sleepMs(1);
        continue;
      }
      if (got === 0) return false; // host closed the channel: shut down quietly
      const chunk = Buffer.from(buf.subarray(0, got)); // a copy: rbuf is reused by the next read
      this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    }
    return true;
  }

  recv() {
    if (!this.fill(4)) return null;
    const end = 4 + this.pending.readUInt32BE(0);
    if (!this.fill(end)) return null;
    const body = this.pending.subarray(4, end);
    this.pending = this.pending.subarray(end);
    return mpack.decode(body);
  }

  send(msg) {
    const body = mpack.encode(msg);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(body.length, 0);
    writeAll(this.fd, Buffer.concat([head, body]));
  }
}

// Lambda's synchronous response limit (runner/model.py MAX_PAYLOAD_BYTES); error documents are
// cut well below the host's 16 MB frame limit.
const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;
const MAX_ERROR_CHARS = 256 * 1024;
const CHUNK_FRAME_BYTES = 1024 * 1024; // a streamed response's chunk frame (decision 075)

// ------------------------------------------------------------------------------ logging

// Lambda's Node runtime prints `undefined` as the request id of lines logged during init.
let currentRequestId;
// Set while work an invocation (or init) left running gets its turn at the start of the next
// invocation (Server.invoke): written once, before the first line that work logs, so that its
// lines, which keep their own request id, read as late output in the next invocation's log.
let lateMarker = null;

function emit(level, args) {
  if (lateMarker !== null) {
    const marker = lateMarker;
    lateMarker = null;
    writeAll(1, Buffer.from(marker, 'utf8'));
  }
  const record = logRecord(level, args);
  if (record !== null) writeAll(1, record);
}

// One console call's log record as bytes, or null when its level is filtered out. Separate from
// emit() so that a spare's warm-up (warmUp below) can run the framing without writing anything.
function logRecord(level, args) {
  if (JSON_LOGS) {
    // Lambda's JSON format (LogFormat JSON): one record per call, below the level dropped.
    if (LOG_LEVELS[level] < JSON_MIN_LEVEL) return null;
    const doc = { timestamp: new Date().toISOString(), level, requestId: currentRequestId,
                  message: util.format(...args) };
    const err = args.find((a) => a instanceof Error);
    if (err) Object.assign(doc, { errorType: err.name, errorMessage: err.message, stackTrace: stackLines(err) });
    return Buffer.from(JSON.stringify(doc) + '\n', 'utf8');
  }
  // Lambda's framing: ISO time, request id, level, message; newlines inside one message become
  // \r so that one console call stays one log record.
  const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...args)}`;
  return Buffer.from(line.replace(/\n/g, '\r') + '\n', 'utf8');
}

// Lambda's LoggingConfig, as the host passes it (environments/process/lambda_env.py).
const LOG_LEVELS = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, FATAL: 5 };
const JSON_LOGS = process.env.AWS_LAMBDA_LOG_FORMAT === 'JSON';
const JSON_MIN_LEVEL = LOG_LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL || 'INFO'] ?? 2;

function patchConsole() {
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE' };
  for (const [method, level] of Object.entries(levels)) {
    console[method] = (...args) => emit(level, args);
  }
  console.fatal = (...args) => emit('FATAL', args);
}

// ------------------------------------------------------------------------------ errors

class RuntimeError extends Error {
  constructor(errorType, message, cause) {
    super(message);
    this.name = errorType;
    this.cause = cause;
  }
}

function stackLines(err) {
  return typeof err?.stack === 'string' ? err.stack.split('\n') : [];
}

// Lambda's error document for a value a handler threw, rejected with or passed to callback.
function errorDoc(err) {
  try {
    if (err instanceof RuntimeError) {
      const head = `${err.name}: ${err.message}`.split('\n');
      const frames = stackLines(err.cause).filter((l) => l.startsWith('    at '));
      return { errorType: err.name, errorMessage: err.message, stackTrace: head.concat(frames) };
    }
    if (util.types.isNativeError(err) || err instanceof Error) {
      return { errorType: String(err.name), errorMessage: String(err.message), stackTrace: stackLines(err) };
    }
    return { errorType: typeof err, errorMessage: String(err), stackTrace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while ' +
        'retrieving one or more of its message, name, and stack',
      stackTrace: [],
    };
  }
}

function maxrssKb() {
  return process.resourceUsage().maxRSS;
}

// ------------------------------------------------------------------------------ response streaming

// Lambda's `awslambda` global (issue 20): `streamifyResponse(handler)` marks a handler that
// takes (event, responseStream, context) and writes its response to the stream;
// `HttpResponseStream.from(stream, {statusCode, headers, cookies})` writes the HTTP prelude
// (JSON, then 8 zero bytes) before the body, as Function URLs expect. When the host asked for
// a stream (the invoke frame's `stream`: InvokeWithResponseStream, decision 075) each write
// goes out at once as a `chunk` frame and the final `result` frame is empty with `streamed`
// set; otherwise (plain Invoke) the bytes are collected and sent as the result, raw, not JSON.
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
class RawResponse {
  constructor(buf, streamed) { this.buf = buf; this.streamed = streamed; }
}

// `sendChunk(buf)`, when given, forwards each write as it happens (synchronously: the channel's
// send blocks until the frame is written, so chunks keep the handler's order and a write's
// callback means the host has it); without it the writes are collected for `body()`.
function responseStream(sendChunk) {
  const { Writable } = require('stream'); // on first use: keeps it out of startup snapshots
  const chunks = [];
  const put = sendChunk || ((b) => chunks.push(b));
  let beforeFirst = null;
  const stream = new Writable({
    write(chunk, encoding, cb) {
      if (beforeFirst) { const f = beforeFirst; beforeFirst = null; f(); }
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, encoding);
      if (buf.length) put(buf);
      cb();
    },
    final(cb) {
      if (beforeFirst) { const f = beforeFirst; beforeFirst = null; f(); }
      cb();
    },
  });
  stream.contentType = 'application/octet-stream';
  stream.setContentType = (type) => { stream.contentType = type; };
  stream._beforeFirstWrite = (f) => { beforeFirst = () => f((b) => put(Buffer.from(b))); };
  stream.body = () => Buffer.concat(chunks);
  return stream;
}

globalThis.awslambda = {
  streamifyResponse(handler) {
    handler[STREAMING] = 'response';
    return handler;
  },
  HttpResponseStream: class HttpResponseStream {
    static from(stream, prelude) {
      stream.setContentType('application/vnd.awslambda.http-integration-response');
      const text = JSON.stringify(prelude || {});
      stream._beforeFirstWrite((write) => { write(text); write(Buffer.alloc(8)); });
      return stream;
    }
  },
};

// Runs a streamified handler; `settle(ok, value)` once its stream ended and its promise
// settled (a handler that returns without ending the stream has it ended for it).
// `sendChunk`: see responseStream (null: buffered).
function runStreaming(handler, event, context, settle, sendChunk) {
  const stream = responseStream(sendChunk);
  let ended = false;
  let returned = false;
  const done = () => { if (ended && returned) settle(true, new RawResponse(stream.body(), !!sendChunk)); };
  stream.on('finish', () => { ended = true; done(); });
  stream.on('error', (e) => settle(false, e));
  Promise.resolve()
    .then(() => handler(event, stream, context))
    .then(() => {
      returned = true;
      if (!stream.writableEnded) stream.end();
      done();
    }, (e) => settle(false, e));
}

// ------------------------------------------------------------------------------ handler loading

// ES modules ignore NODE_PATH, so on its own `import x from 'pkg'` in an .mjs handler would
// not find a package shipped in a layer (/opt/nodejs/node_modules), which Lambda resolves. A
// resolve hook, registered once before the first ESM import (not at startup: it would run in
// the preinitialised spares' snapshot, decision 069), retries a bare specifier node could not
// find as if imported from a module inside each NODE_PATH directory, in NODE_PATH's order, so
// the code's own node_modules still wins. Other errors and relative/URL specifiers pass through.
const ESM_LAYER_HOOK = `
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
let parents = [];
export function initialize(data) {
  parents = data.dirs.map((d) => pathToFileURL(join(d, '__runner_layer_parent.mjs')).href);
}
const bare = (s) => !s.startsWith('.') && !s.startsWith('/') && !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s);
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    if (e.code !== 'ERR_MODULE_NOT_FOUND' || !bare(specifier)) throw e;
    for (const parentURL of parents) {
      try {
        return await next(specifier, { ...context, parentURL });
      } catch (again) {
        if (again.code !== 'ERR_MODULE_NOT_FOUND') throw again;
      }
    }
    throw e;
  }
}
`;
let esmLayersHooked = false;

function importESM(file) {
  if (!esmLayersHooked) {
    esmLayersHooked = true;
    const dirs = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean);
    if (dirs.length) {
      require('module').register('data:text/javascript,' + encodeURIComponent(ESM_LAYER_HOOK),
        { data: { dirs } });
    }
  }
  return import(url.pathToFileURL(file).href);
}

async function loadModule(taskRoot, moduleRoot, moduleName, preloaded) {
  if (preloaded) return preloaded;
  const base = path.resolve(taskRoot, moduleRoot, moduleName);
  // Lambda's order: an extensionless file (loaded with require), then .js, .mjs, .cjs.
  if (fs.existsSync(base) && fs.statSync(base).isFile()) return require(base);
  for (const ext of ['.js', '.mjs', '.cjs']) {
    const file = base + ext;
    if (!fs.existsSync(file)) continue;
    if (ext === '.mjs') return importESM(file);
    try {
      return require(file);
    } catch (e) {
      // A .js file under "type": "module" is ESM: let node's own rules decide, as Lambda does.
      // Node 20.19+ can require() ESM, except a graph with top-level await.
      if (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE') {
        return importESM(file);
      }
      throw e;
    }
  }
  // No file of that name: a package in the code's node_modules may provide it.
  return require(require.resolve(moduleName, { paths: [path.resolve(taskRoot, moduleRoot)] }));
}

async function loadHandler(taskRoot, spec, preloaded) {
  const slash = spec.lastIndexOf('/');
  const moduleRoot = spec.slice(0, slash + 1);
  const match = /^([^.]+)\.(.+)$/.exec(spec.slice(slash + 1));
  if (!match) {
    throw new RuntimeError('Runtime.MalformedHandlerName',
      `Bad handler ${spec}: use file.export, e.g. index.handler`);
  }
  const [, moduleName, handlerPath] = match;
  let mod;
  try {
    mod = await loadModule(taskRoot, moduleRoot, moduleName, preloaded);
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new RuntimeError('Runtime.UserCodeSyntaxError', `SyntaxError: ${e.message}`, e);
    }
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new RuntimeError('Runtime.ImportModuleError', `Error: ${e.message}`, e);
    }
    throw e; // module-level code threw: reported as itself, like Lambda does
  }
  let fn = mod;
  for (const key of handlerPath.split('.')) fn = fn == null ? undefined : fn[key];
  if (fn === undefined) {
    throw new RuntimeError('Runtime.HandlerNotFound', `${spec} is undefined or not exported`);
  }
  if (typeof fn !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound', `${spec} is not a function`);
  }
  return fn;
}

// ------------------------------------------------------------------------------ invocations

// _X_AMZN_TRACE_ID changes every invocation. Assigning it to process.env ends in glibc's
// setenv(), which copies each distinct value into a table it never frees: ~140 bytes leaked
// per invocation, ~140 MB over a million warm invocations. So process.env becomes a proxy of
// the real one that keeps this one variable in JavaScript and forwards every other name
// untouched. Handlers read, set and delete it as before, and child_process (which copies
// process.env for the child) passes it on; only native code calling getenv() does not see it.
const TRACE_KEY = '_X_AMZN_TRACE_ID';
const traceVar = { value: undefined };

function installTraceVar() {
  const real = process.env;
  if (real[TRACE_KEY] !== undefined) {
    traceVar.value = real[TRACE_KEY];
    delete real[TRACE_KEY];
  }
  const mine = (key) => key === TRACE_KEY;
  process.env = new Proxy(real, {
    get: (t, key) => (mine(key) ? traceVar.value : t[key]),
    set: (t, key, value) => {
      // process.env stores strings: coerce as it does.
      if (mine(key)) traceVar.value = String(value); else t[key] = value;
      return true;
    },
    has: (t, key) => (mine(key) ? traceVar.value !== undefined : key in t),
    deleteProperty: (t, key) => {
      if (mine(key)) traceVar.value = undefined; else delete t[key];
      return true;
    },
    ownKeys: (t) => {
      const keys = Reflect.ownKeys(t);
      if (traceVar.value !== undefined && !keys.includes(TRACE_KEY)) keys.push(TRACE_KEY);
      return keys;
    },
    getOwnPropertyDescriptor: (t, key) => {
      if (!mine(key)) return Reflect.getOwnPropertyDescriptor(t, key);
      if (traceVar.value === undefined) return undefined;
      return { value: traceVar.value, writable: true, enumerable: true, configurable: true };
    },
    defineProperty: (t, key, desc) => {
      if (!mine(key)) return Reflect.defineProperty(t, key, desc);
      traceVar.value = String(desc.value);
      return true;
    },
  });
}

// An environment serves every version that shares its code ($LATEST and the versions published
// from it), so the variables naming the version follow the context the host sends. Set only
// when they change (a new context arrives only then), so glibc's copy per distinct value
// (see _X_AMZN_TRACE_ID above) grows with version switches, not with invocations.
function nameVersion(ctx) {
  const pairs = [['AWS_LAMBDA_FUNCTION_VERSION', ctx.function_version],
    ['AWS_LAMBDA_LOG_STREAM_NAME', ctx.log_stream_name]];
  for (const [key, value] of pairs) {
    if (value && process.env[key] !== value) process.env[key] = value;
  }
}

function makeContext(ctx, requestId, deadline) {
  const env = process.env;
  const deadlineMs = Number(deadline ?? ctx.deadline_ms ?? 0);
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: ctx.function_name || env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: ctx.function_version || env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: ctx.invoked_function_arn || '',
    memoryLimitInMB: String(ctx.memory_limit_in_mb || env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE),
    awsRequestId: requestId,
    logGroupName: ctx.log_group_name || env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: ctx.log_stream_name || env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: ctx.identity ?? undefined,
    clientContext: ctx.client_context ?? undefined,
    getRemainingTimeInMillis() { return Math.max(0, deadlineMs - Date.now()); },
  };
}

// Whether anything the guest started is still pending: ref'd timers and immediates, requests in
// flight, open ref'd handles (sockets, servers, children). Our keep-alive interval must be
// unref'd when this is asked. The common case, nothing at all, costs one call (~0.1 us, no
// system call); node's list also names handles that keep nothing alive (process.stdout once a
// handler wrote to it, an idle unref'd keep-alive socket), so only a non-empty list is looked
// at closer. An over-estimate costs one loop turn before the next invocation, nothing else.
function workLeft() {
  const info = process.getActiveResourcesInfo();
  if (info.length === 0) return false;
  if (info.includes('Timeout') || info.includes('Immediate')) return true;
  if (process._getActiveRequests().length !== 0) return true;
  return process._getActiveHandles().some((h) => {
    if (h._isStdio) return false;
    const handle = h._handle;
    return !(handle && typeof handle.hasRef === 'function') || handle.hasRef();
  });
}

class Server {
  constructor(chan, handler) {
    this.chan = chan;
    this.handler = handler;
    this.inflight = null; // {fail} while an invocation runs (see fatal())
    // What to do when the event loop empties during an invocation (node's `beforeExit`): answer
    // a callback-style invocation. Null otherwise; the loop cannot empty then (see keepAlive).
    this.onEmpty = null;
    // The context fields the host sent last: an invoke frame carries `ctx` only when it
    // changed since the previous one (docs/guest-protocol.md).
    this.lastCtx = {};
    this.pendingFatal = null; // an error that struck between invocations (see fatal())
    // Keeps the event loop alive while a returned promise is pending (ref'd only then), so a
    // promise that never settles meets the host's timeout instead of node exiting. One interval
    // for the process, made here rather than at load time (a timer cannot live in a startup
    // snapshot): ref()/unref() per invocation instead of creating and clearing one.
    this.keepAlive = setInterval(() => {}, 1 << 30);
    this.keepAlive.unref();
    // Fires only when nothing at all is pending: never while we block in read(2) (that is inside
    // a callback) nor while keepAlive is ref'd; so only in the states that set onEmpty.
    process.on('beforeExit', () => {
      const onEmpty = this.onEmpty;
      if (onEmpty !== null) {
        this.onEmpty = null;
        onEmpty();
      }
    });
  }

  // Read frames until an invocation arrives, then start it. Called from an immediate, never
  // from inside a settling handler, so the stack does not grow with synchronous callbacks.
  next() {
    // Asked before blocking: work still pending now was left by the invocation that just
    // answered (or by init), and must not pass for the next invocation's.
    const left = workLeft();
    for (;;) {
      const msg = this.chan.recv();
      if (msg === null || msg.t === 'shutdown') process.exit(0);
      if (msg.t === 'invoke') { this.invoke(msg, left); return; }
    }
  }

  // Settlement, as Lambda's Node runtime decides it (decision 045): the first of callback(),
  // the returned promise's settlement or a throw takes the answer; later ones are ignored.
  // callback(null, result) answers once the event loop is empty unless
  // context.callbackWaitsForEmptyEventLoop is false; an error answers at once. A handler that
  // returns anything but a promise and has not called back is callback-style: it answers
  // null once the loop is empty if callback() was never called.
  // The reply goes out from an immediate, not from inside the settling call, so what the
  // handler prints in the same turn (after callback(), say) precedes the reply and is its own.
  invoke(msg, left) {
    const id = msg.id;
    const keepAlive = this.keepAlive;
    keepAlive.ref();
    let decided = false; // an answer is chosen (maybe waiting for the loop to empty)
    let sent = false;
    const finish = (ok, value) => {
      if (sent) return;
      sent = true;
      this.onEmpty = null;
      keepAlive.unref();
      this.inflight = null;
      this.reply(id, ok, value, false);
      this.next();
    };
    const settle = (ok, value) => {
      if (decided) return;
      decided = true;
      this.onEmpty = null;
      setImmediate(finish, ok, value);
    };
    const whenEmpty = (value) => {
      this.onEmpty = () => setImmediate(finish, true, value);
      keepAlive.unref();
    };
    this.inflight = {
      fail: (err) => { // fatal: answer now and exit, whatever answer was chosen but not sent
        if (sent) return;
        sent = true;
        currentRequestId = id; // its Invoke Error line is this invocation's, even mid catch-up
        lateMarker = null;
        this.reply(id, false, err, true);
        process.exit(1);
      },
    };
    if (this.pendingFatal !== null) {
      this.inflight.fail(this.pendingFatal);
      return;
    }
    const run = () => {
      currentRequestId = id;
      traceVar.value = msg.trace || `Root=${id}`; // the caller's trace, if it sent one
      lateMarker = null;
      let event;
      try {
        event = msg.payload && msg.payload.length ? JSON.parse(Buffer.from(msg.payload).toString('utf8')) : null;
      } catch (e) {
        settle(false, new RuntimeError('Runtime.InvalidEvent', `event is not JSON: ${e.message}`, e));
        return;
      }
      if (msg.ctx) {
        this.lastCtx = msg.ctx;
        nameVersion(msg.ctx);
      }
      const context = makeContext(this.lastCtx, id, msg.deadline_ms);
      if (this.handler[STREAMING] === 'response') {
        // A chunk written after the answer was chosen (the handler kept writing after an
        // error) is dropped: the host has stopped reading chunks of this invocation.
        const sendChunk = msg.stream
          ? (buf) => {
            // In pieces of at most 1 MB: one write may be larger than the host's frame limit.
            for (let i = 0; i < buf.length && !decided; i += CHUNK_FRAME_BYTES) {
              this.chan.send({ t: 'chunk', id, payload: buf.subarray(i, i + CHUNK_FRAME_BYTES) });
            }
          }
          : null;
        runStreaming(this.handler, event, context, settle, sendChunk);
        return;
      }
      const callback = (err, result) => {
        if (decided) return;
        if (err !== undefined && err !== null) settle(false, err);
        else if (!context.callbackWaitsForEmptyEventLoop) settle(true, result);
        else { decided = true; whenEmpty(result); }
      };
      let ret;
      try {
        ret = this.handler(event, context, callback);
      } catch (e) {
        settle(false, e);
        return;
      }
      if (ret && typeof ret.then === 'function') {
        // Attached even after a callback won, so that a later rejection is not unhandled.
        try {
          ret.then((r) => settle(true, r), (e) => settle(false, e));
        } catch (e) {
          settle(false, e);
        }
      } else if (!decided) {
        whenEmpty(null); // callback-style: callback() may still come, from pending work
      }
    };
    if (!left) {
      run();
      return;
    }
    // Work the previous invocation (or init) left running: give what is already due one turn
    // of the loop first (timers, I/O callbacks), logged under its own request id with a marker,
    // rather than under this invocation's. Only then does this handler start. An error it
    // throws fails this invocation (inflight is set), as it would on Lambda.
    const who = currentRequestId === undefined ? 'the init phase' : `invocation ${currentRequestId}`;
    lateMarker = `[runner] output of ${who}, written by work it left running after it ended:\n`;
    setImmediate(run);
  }

  reply(id, ok, value, fatal) {
    let frame;
    if (ok) {
      let body;
      try {
        body = value instanceof RawResponse ? value.buf
          : JSON.stringify(value === undefined ? null : value);
      } catch (e) {
        ok = false;
        value = new RuntimeError('Runtime.MarshalError', `Unable to stringify response body: ${e.message}`, e);
      }
      if (ok) {
        const payload = Buffer.isBuffer(body) ? body
          : Buffer.from(body === undefined ? 'null' : body, 'utf8');
        if (payload.length > MAX_RESPONSE_BYTES) {
          // Refused here: a frame over the host's limit would read as a broken channel.
          ok = false;
          value = new RuntimeError('Function.ResponseSizeTooLarge',
            `Response payload size (${payload.length} bytes) exceeded maximum allowed payload ` +
            `size (${MAX_RESPONSE_BYTES} bytes).`);
        } else {
          frame = { t: 'result', id, payload };
          if (value instanceof RawResponse && value.streamed) frame.streamed = true;
        }
      }
    }
    if (!ok) {
      const doc = errorDoc(value);
      if (doc.errorMessage.length > MAX_ERROR_CHARS) {
        doc.errorMessage = doc.errorMessage.slice(0, MAX_ERROR_CHARS) + ' [truncated]';
      }
      doc.errorType = doc.errorType.slice(0, 1024); // an error's name is the guest's to choose
      doc.stackTrace = doc.stackTrace.slice(0, 200).map((l) => l.slice(0, 2000));
      emit('ERROR', ['Invoke Error', `\t${JSON.stringify(doc)}`]);
      frame = { t: 'error', id, error: doc, fatal };
    }
    frame.maxrss_kb = maxrssKb();
    this.chan.send(frame);
  }

  // An error nobody awaited (a throw in a timer, an unhandled rejection) leaves the runtime in
  // an unknown state: fail the invocation in flight and exit, so the host replaces the
  // environment (Lambda's runtime exits too).
  fatal(err) {
    if (this.inflight) {
      this.inflight.fail(err);
      return;
    }
    // Between invocations (e.g. a rejection left over from init): log it now, fail the next
    // invocation with it and exit then, so the caller sees the cause rather than a bare exit.
    emit('ERROR', ['Uncaught error outside an invocation', `\t${JSON.stringify(errorDoc(err))}`]);
    if (this.pendingFatal === null) this.pendingFatal = err;
  }
}

// ------------------------------------------------------------------------------ warm-up

// A pre-started spare's warm-up (decision 074), run after init when the host's `init` frame
// asks for it (`warmup`; pool/prestart.py sets it for spares only). The first invocation in a
// fresh V8 process otherwise pays for compiling and first-touching the bootstrap's own invoke
// path: msgpack decode and encode, JSON parse and stringify, the context object, the log
// record's formatting, the error document. This runs that path on a built-in no-op handler,
// never on the user's: a warm-up event handed to user code would run its side effects (writes,
// requests, counters) for an invocation nobody made. Nothing is written: no frame goes to the
// host (it expects `ready` next) and log records are built and dropped, so the function's log
// never shows the warm-up. The request id is put back to `undefined`, init's.
const WARMUP_ROUNDS = 3; // V8's baseline tiers kick in after a few calls of a function
function warmUp() {
  const noop = (event, context) => ({ ok: true, key: event.key, left: context.getRemainingTimeInMillis() });
  const ctx = { function_name: 'warmup', function_version: '$LATEST', memory_limit_in_mb: 128,
                invoked_function_arn: '', log_group_name: '', log_stream_name: '' };
  for (let i = 0; i < WARMUP_ROUNDS; i += 1) {
    const id = `warmup-${i}`;
    currentRequestId = id;
    const frame = mpack.decode(mpack.encode({ t: 'invoke', id, deadline_ms: Date.now() + 1000,
      payload: Buffer.from('{"key":"value","n":[1,2,3]}', 'utf8'), ctx }));
    const event = JSON.parse(Buffer.from(frame.payload).toString('utf8'));
    const context = makeContext(frame.ctx, id, frame.deadline_ms);
    logRecord('INFO', ['warm-up', event]);
    const body = Buffer.from(JSON.stringify(noop(event, context)), 'utf8');
    mpack.encode({ t: 'result', id, payload: body, maxrss_kb: maxrssKb() });
    const doc = errorDoc(new Error('warm-up'));
    logRecord('ERROR', ['Invoke Error', `\t${JSON.stringify(doc)}`]);
    mpack.encode({ t: 'error', id, error: doc, fatal: false, maxrss_kb: 0 });
  }
  currentRequestId = undefined;
}

// ------------------------------------------------------------------------------ main

async function initPhase(chan, preloaded) {
  const taskRoot = process.env.LAMBDA_TASK_ROOT || '/var/task';
  try { process.chdir(taskRoot); } catch (_) { /* reported by the module load below */ }
  const t0 = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e6;
  try {
    const handler = await loadHandler(taskRoot, process.env._HANDLER || '', preloaded);
    return { handler, ready: { t: 'ready', init_ms: elapsed(), maxrss_kb: maxrssKb() } };
  } catch (e) {
    const doc = errorDoc(e);
    emit('ERROR', ['Init Error', `\t${JSON.stringify(doc)}`]);
    chan.send({ t: 'init_error', error: doc, init_ms: elapsed(), maxrss_kb: maxrssKb() });
    return null;
  }
}

// RUNNER_KSM=on starts every environment with one V8 --random-seed (so that their heaps can
// merge: runner/environments/node/memory_sharing.py), which would give every environment the
// same Math.random sequence. Replace it, before any function code runs, by xoshiro128** seeded
// from the kernel's random source in this process: 53 random bits per call, as V8's.
function reseedMathRandom() {
  const s = new Uint32Array(4);
  require('crypto').randomFillSync(s);
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1; // the one state xoshiro never leaves
  const rotl = (x, k) => (x << k) | (x >>> (32 - k));
  const next = () => {
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 11);
    return r;
  };
  const random = function random() {
    return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
  };
  Object.defineProperty(Math, 'random', { value: random, writable: true, configurable: true, enumerable: false });
}

// `preloaded`: module exports already evaluated (startup-snapshot mode); null otherwise.
function main(preloaded = null) {
  const fd = Number(process.env._RUNNER_FD);
  delete process.env._RUNNER_FD;
  if (process.env._RUNNER_RESEED_MATH_RANDOM === '1') reseedMathRandom();
  delete process.env._RUNNER_RESEED_MATH_RANDOM;
  installTraceVar();
  const chan = new Channel(fd);
  chan.send({ t: 'hello', pid: process.pid });
  const first = chan.recv();
  if (first === null || first.t !== 'init') process.exit(0);
  patchConsole();
  let server = null;
  const onFatal = (err, type) => {
    const e = type ? new RuntimeError(type, String(err?.stack ? `${err.name}: ${err.message}` : err), err) : err;
    if (server) { server.fatal(e); return; }
    // During init: the host is waiting for ready/init_error; answer with this error.
    const doc = errorDoc(e);
    emit('ERROR', ['Init Error', `\t${JSON.stringify(doc)}`]);
    chan.send({ t: 'init_error', error: doc, init_ms: 0, maxrss_kb: maxrssKb() });
    process.exit(1);
  };
  process.on('uncaughtException', (err) => onFatal(err, null));
  process.on('unhandledRejection', (reason) => onFatal(reason, 'Runtime.UnhandledPromiseRejection'));
  initPhase(chan, preloaded).then((loaded) => {
    if (loaded === null) process.exit(1);
    if (first.warmup) warmUp(); // before `ready`: the host freezes the spare once it has it
    server = new Server(chan, loaded.handler);
    // `ready` goes out from the turn that then blocks for the first invocation, as a reply does
    // (Server.invoke): what init's timers print until then precedes it and is init's output.
    setImmediate(() => {
      chan.send(loaded.ready);
      server.next();
    });
  });
}

module.exports = { main, errorDoc, loadHandler, installTraceVar };

if (require.main === module) main();
