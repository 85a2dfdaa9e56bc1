"""The Python runtime inside a sandbox: loads a Lambda handler and serves invocations.

Runs as `python -I -S -B python_bootstrap.py` (stdlib only, no site-packages, no user site).
Talks to the host over the socket whose fd is in `_RUNNER_FD` with length-prefixed msgpack
frames (docs/guest-protocol.md); its stdout and stderr are the environment's log pipe.

The init phase does not start until the host says `init`: by then the host has applied the
environment's limits, so no user code ever runs unconstrained.
"""

import json
import marshal
import os
import resource
import socket
import struct
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mpack  # noqa: E402  (after the path fix above; stdlib-only codec)

del sys.path[0]

_HDR = struct.Struct(">I")
# Lambda's limit on a synchronous response (runner.model.MAX_PAYLOAD_BYTES; the host checks it
# too): refused here, where the size is known, before a frame the host would not accept.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
MAX_ERROR_CHARS = 256 * 1024  # of an error message, as the Node bootstrap: frames stay bounded
# Set in the length word of a frame whose body is marshal, not msgpack: the host sends its
# frames that way (same interpreter, one C call to decode). Only host frames: we never send it.
_MARSHAL = 1 << 31


class Channel:
    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        # Received bytes not yet returned as a frame: one recv takes a frame's header and body
        # together (one system call per invocation, not two).
        self._buf = bytearray()

    def send(self, msg):
        body = _mpack.packb(msg)
        self.sock.sendall(_HDR.pack(len(body)) + body)

    def recv(self):
        if not self._fill(4):
            return None
        n = _HDR.unpack_from(self._buf)[0]
        end = 4 + (n & ~_MARSHAL)
        if not self._fill(end):
            return None
        body = bytes(self._buf[4:end])
        del self._buf[:end]
        return marshal.loads(body) if n & _MARSHAL else _mpack.unpackb(body)

    def _fill(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(max(n - len(self._buf), 1 << 16))
            if not chunk:
                return False
            self._buf += chunk
        return True


class _InPlaceVar:
    """An environment variable the bootstrap sets again and again (`_X_AMZN_TRACE_ID` for
    every invocation, the version's variables when the host sends another version's context)
    without growing the process.

    `os.environ[k] = v` ends in glibc's setenv(), which copies each distinct value into a
    table it never frees (so that pointers handed out by getenv stay valid): a new request id
    per invocation leaked ~100 bytes each, ~100 MB over a million warm invocations. Here the
    variable's C-level entry is one buffer of ours, placed in `environ` by putenv() (which
    stores the pointer, no copy) and rewritten in place; the `os.environ` mapping is updated
    directly so that os.environ and os.getenv agree with what child processes inherit.

    Safe because: the buffer lives as long as the process (a module global; a forked child
    gets its own copy at the same address), putenv() is called again on every set (a handler
    that assigned or deleted the variable itself has replaced or removed our pointer), and
    values longer than the buffer (or holding a NUL, which os.environ refuses) take the
    ordinary path.
    """

    def __init__(self, key, capacity):
        self.KEY = key
        self.CAPACITY = capacity  # bytes of value; a longer one takes the ordinary path
        self._buf = None
        env = os.environ
        if not all(hasattr(env, a) for a in ("_data", "encodekey", "encodevalue")):
            return  # not CPython's os._Environ: the ordinary path only
        try:
            import ctypes

            putenv = ctypes.CDLL(None).putenv
        except (ImportError, OSError, AttributeError):
            return
        putenv.argtypes = [ctypes.c_char_p]
        self._prefix = self.KEY.encode() + b"="
        self._buf = ctypes.create_string_buffer(len(self._prefix) + self.CAPACITY + 1)
        self._buf.raw = self._prefix + bytes(self.CAPACITY + 1)
        # Written through a memoryview: a slice assignment, not a foreign call per invocation.
        self._view = memoryview(self._buf).cast("B")
        self._putenv = putenv
        self._key = env.encodekey(self.KEY)

    def set(self, value):
        raw = os.environ.encodevalue(value) if self._buf is not None else b""
        if self._buf is None or len(raw) > self.CAPACITY or b"\0" in raw:
            os.environ[self.KEY] = value
            return
        start = len(self._prefix)
        self._view[start:start + len(raw) + 1] = raw + b"\0"
        self._putenv(self._buf)
        os.environ._data[self._key] = raw

    def clear(self):
        os.environ.pop(self.KEY, None)  # unsetenv() drops the pointer; nothing is freed or kept


# "Root=" + a request id, or a full X-Ray header.
_trace_var = _InPlaceVar("_X_AMZN_TRACE_ID", 256)
# Environments serve every version that shares their code ($LATEST and the versions published
# from it), so the variables naming the version follow the context the host sends.
_VERSION_VARS = ((_InPlaceVar("AWS_LAMBDA_FUNCTION_VERSION", 32), "function_version"),
                 (_InPlaceVar("AWS_LAMBDA_LOG_STREAM_NAME", 160), "log_stream_name"))


def _name_version(ctx):
    for var, field in _VERSION_VARS:
        value = ctx.get(field)
        if value and os.environ.get(var.KEY) != value:
            var.set(value)


class _Attrs:
    """An object with the attributes Lambda's Python runtime gives (None when absent)."""

    _FIELDS = ()

    def __init__(self, doc):
        doc = doc if isinstance(doc, dict) else {}
        for name in self._FIELDS:
            setattr(self, name, doc.get(name))

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (n, getattr(self, n)) for n in self._FIELDS))


class _Client(_Attrs):
    _FIELDS = ("installation_id", "app_title", "app_version_name", "app_version_code",
               "app_package_name")


class _ClientContext(_Attrs):
    _FIELDS = ("client", "custom", "env")


class _CognitoIdentity(_Attrs):
    _FIELDS = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, doc):
        doc = doc if isinstance(doc, dict) else {}
        self.cognito_identity_id = doc.get("cognitoIdentityId")
        self.cognito_identity_pool_id = doc.get("cognitoIdentityPoolId")


def _client_context(doc):
    """context.client_context as Lambda's runtime makes it: None, or an object with
    `client` (itself an object), `custom` and `env` from the X-Amz-Client-Context JSON."""
    if not isinstance(doc, dict):
        return None
    cc = _ClientContext(doc)
    if cc.client is not None:
        cc.client = _Client(cc.client)
    return cc


class LambdaContext:
    """The `context` argument, with the attributes of AWS Lambda's Python runtime."""

    def __init__(self, ctx, request_id):
        self.aws_request_id = request_id
        self.function_name = ctx.get("function_name", "")
        self.function_version = ctx.get("function_version", "$LATEST")
        self.invoked_function_arn = ctx.get("invoked_function_arn", "")
        self.memory_limit_in_mb = str(ctx.get("memory_limit_in_mb", ""))
        self.log_group_name = ctx.get("log_group_name", "")
        self.log_stream_name = ctx.get("log_stream_name", "")
        self.client_context = _client_context(ctx.get("client_context"))
        self.identity = _CognitoIdentity(ctx.get("identity"))
        self._deadline_ms = int(ctx.get("deadline_ms", 0))

    @classmethod
    def from_template(cls, template, request_id, deadline_ms):
        """A context with `template`'s fields (a LambdaContext made from the host's last
        context frame) for another invocation: copies attributes instead of parsing the map."""
        ctx = cls.__new__(cls)
        ctx.__dict__.update(template.__dict__)
        ctx.aws_request_id = request_id
        if deadline_ms is not None:
            ctx._deadline_ms = int(deadline_ms)
        return ctx

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self):
        return "LambdaContext([aws_request_id=%s,function_name=%s,function_version=%s])" % (
            self.aws_request_id, self.function_name, self.function_version)


def _maxrss_kb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids)


_OWN_FILES = ("python_bootstrap.py", "python_zygote.py")


def _trace(tb):
    """Lambda's stackTrace: the traceback from the user's first frame on (the bootstrap's
    own frames that led to the handler, or to the import, are not shown, as on Lambda)."""
    frames = traceback.extract_tb(tb)
    i = 0
    while i < len(frames) and (os.path.basename(frames[i].filename) in _OWN_FILES
                               or frames[i].filename.startswith("<frozen importlib")):
        i += 1
    return traceback.format_list(frames[i:])


def _error(exc_type, message, trace=None):
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + " [truncated]"
    return {"errorType": exc_type[:1024], "errorMessage": message, "stackTrace": trace or []}


class _RequestIdFilter:
    """Adds the current request id to every `logging` record, as Lambda's runtime does."""

    request_id = ""

    def filter(self, record):
        record.aws_request_id = _RequestIdFilter.request_id
        return True


# AWS_LAMBDA_LOG_LEVEL (Lambda's ApplicationLogLevel) -> the logging module's levels.
_LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40, "FATAL": 50}


def _json_formatter(logging):
    class JsonFormatter(logging.Formatter):
        """Lambda's JSON log records: timestamp, level, message, logger, requestId, and the
        exception's errorType, errorMessage and stackTrace when one is logged."""

        def format(self, record):
            doc = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + ".%03dZ" % record.msecs,
                "level": record.levelname,
                "message": record.getMessage(),
                "logger": record.name,
            }
            if record.exc_info and record.exc_info[0] is not None:
                doc["errorType"] = record.exc_info[0].__name__
                doc["errorMessage"] = str(record.exc_info[1])
                doc["stackTrace"] = _trace(record.exc_info[2])
            doc["requestId"] = getattr(record, "aws_request_id", "")
            try:
                return json.dumps(doc, default=str)
            except (TypeError, ValueError):
                doc["message"] = repr(doc["message"])
                return json.dumps(doc, default=str)

    return JsonFormatter()


def _setup_logging():
    import logging

    handler = logging.StreamHandler(sys.stdout)
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        handler.setFormatter(_json_formatter(logging))
        level = _LEVELS.get(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO"), 20)
        logging.addLevelName(5, "TRACE")
        logging.getLogger().setLevel(level)
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
        handler.formatter.converter = time.gmtime
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


def load_handler(spec):
    """Import `module.function` from the task root. Returns (handler, None) or (None, error)."""
    try:
        modname, fname = spec.rsplit(".", 1)
    except ValueError as e:
        return None, _error("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (spec, e))
    if modname.replace("/", ".") in sys.builtin_module_names:
        return None, _error("Runtime.BuiltInModuleConflict",
                            "Cannot use built-in module %s as a handler module" % modname)
    try:
        import importlib

        mod = importlib.import_module(modname.replace("/", "."))
    except MemoryError:
        return None, _error("Runtime.OutOfMemory", "Runtime exited: out of memory during init")
    except ImportError as e:
        return None, _error("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, (e.text or "").strip())]
        return None, _error("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace)
    except BaseException as e:  # anything module-level code raises, SystemExit included
        return None, _error(type(e).__name__, str(e), _trace(e.__traceback__))
    fn = getattr(mod, fname, None)
    if fn is None:
        return None, _error("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    if not callable(fn):
        return None, _error("Runtime.HandlerNotFound", "Handler '%s' on module '%s' is not callable" % (fname, modname))
    return fn, None


class _Contexts:
    """The context fields the host sent last: an invoke frame carries `ctx` only when it
    changed since the previous frame (docs/guest-protocol.md), and its own `deadline_ms`."""

    template = None

    @classmethod
    def for_invoke(cls, msg, rid):
        ctx = msg.get("ctx")
        if ctx is not None or cls.template is None:
            cls.template = LambdaContext(ctx or {}, "")
            _name_version(ctx or {})
        return LambdaContext.from_template(cls.template, rid, msg.get("deadline_ms"))


def invoke(handler, msg):
    """Run one invocation; returns the reply frame."""
    rid = msg["id"]
    _RequestIdFilter.request_id = rid
    _trace_var.set(msg.get("trace") or "Root=" + rid)  # the caller's trace, if it sent one
    fatal = False
    try:
        event = json.loads(msg["payload"]) if msg["payload"] else None
        result = handler(event, _Contexts.for_invoke(msg, rid))
        try:
            try:
                body = json.dumps(result).encode()
            except TypeError:  # Decimal (DynamoDB's numbers) or a type JSON cannot hold
                body = _dumps_decimals(result).encode()
        except (TypeError, ValueError) as e:
            reply = {"t": "error", "id": rid,
                     "error": _error("Runtime.MarshalError", "Unable to marshal response: %s" % e)}
        else:
            if len(body) > MAX_RESPONSE_BYTES:
                reply = {"t": "error", "id": rid, "error": _error(
                    "Function.ResponseSizeTooLarge",
                    "Response payload size (%d bytes) exceeded maximum allowed payload size "
                    "(%d bytes)." % (len(body), MAX_RESPONSE_BYTES))}
            else:
                reply = {"t": "result", "id": rid, "payload": body}
    except MemoryError:
        fatal = True
        reply = {"t": "error", "id": rid,
                 "error": _error("Runtime.OutOfMemory", "Runtime exited: out of memory (MemoryError)")}
    except SystemExit as e:
        fatal = True
        reply = {"t": "error", "id": rid,
                 "error": _error("Runtime.ExitError", "Runtime exited with status %s" % (e.code,))}
    except BaseException as e:
        reply = {"t": "error", "id": rid, "error": _error(type(e).__name__, str(e), _trace(e.__traceback__))}
    reply["fatal"] = fatal
    return reply


def _dumps_decimals(result):
    """JSON of `result` with every decimal.Decimal as a JSON number of its exact digits, as
    Lambda's Python runtime writes them (DynamoDB hands handlers Decimals). Other types JSON
    cannot hold still raise TypeError (Runtime.MarshalError, Lambda's message). Only reached
    when plain json.dumps failed, so results without Decimals pay nothing for it.

    The stdlib encoder cannot emit raw text for an object, so each Decimal is first written as
    a placeholder string holding a per-call random nonce, then the quoted placeholder is
    replaced by the number: no user string can hold the nonce."""
    import decimal

    nonce = os.urandom(8).hex()
    numbers = []

    def default(obj):
        if isinstance(obj, decimal.Decimal):
            numbers.append("NaN" if obj.is_nan() else str(obj))
            return "\x00%s:%d\x00" % (nonce, len(numbers) - 1)
        raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)

    text = json.dumps(result, default=default)
    for i, number in enumerate(numbers):
        text = text.replace('"\\u0000%s:%d\\u0000"' % (nonce, i), number, 1)
    return text


def warm_up():
    """Run one invocation's bootstrap path with a no-op handler and discard it. Used by the
    zygote's children before they are handed out: the first real invocation of a freshly
    forked child otherwise pays copy-on-write faults on every page this path touches. No
    function code runs (the handler here is ours); the request-id state is reset after."""
    msg = {"t": "invoke", "id": "warm-up", "payload": b'{"warm": [1, "up"]}',
           "ctx": {"function_name": "", "deadline_ms": 0}}
    _mpack.packb(invoke(lambda event, context: event, marshal.loads(marshal.dumps(msg))))
    _maxrss_kb()
    _Contexts.template = None
    _RequestIdFilter.request_id = ""
    _trace_var.clear()


def _flush_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def serve(chan, handler):
    """Serve invocations until the host closes the channel or a fatal error occurs."""
    while True:
        msg = chan.recv()
        if msg is None or msg.get("t") == "shutdown":
            return 0
        if msg.get("t") != "invoke":
            continue
        reply = invoke(handler, msg)
        # Flush before replying: the host drains the log pipe after the reply arrives, so every
        # line the handler printed is attributed to this invocation. A handler may have closed
        # the streams (or their descriptors): its result still goes back.
        _flush_streams()
        reply["maxrss_kb"] = _maxrss_kb()
        chan.send(reply)
        if reply["fatal"]:
            return 1


def run_init():
    """The init phase: enter the task root, set up logging, import the handler.
    Returns (handler, error document or None, init_ms). Shared with the zygote."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    # Layers (issue 20): Lambda's order is the task root, then /opt/python/lib/pythonX.Y/
    # site-packages, then /opt/python, then the runtime's own paths.
    opt = os.environ.pop("_RUNNER_OPT", "")
    if opt:
        ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        sys.path[0:0] = [f"{opt}/python/lib/{ver}/site-packages", f"{opt}/python"]
    sys.path.insert(0, task_root)
    try:
        os.chdir(task_root)
    except OSError:
        pass
    _setup_logging()
    t0 = time.perf_counter()
    handler, err = load_handler(os.environ.get("_HANDLER", ""))
    init_ms = (time.perf_counter() - t0) * 1000.0
    _flush_streams()
    return handler, err, init_ms


def init_phase(chan):
    """Load the handler (the init phase). Returns the handler, or None after reporting."""
    handler, err, init_ms = run_init()
    if err is not None:
        chan.send({"t": "init_error", "error": err, "init_ms": init_ms, "maxrss_kb": _maxrss_kb()})
        return None
    chan.send({"t": "ready", "init_ms": init_ms, "maxrss_kb": _maxrss_kb()})
    return handler


def main():
    fd = int(os.environ.pop("_RUNNER_FD"))
    chan = Channel(fd)
    # Line-buffered logs: a line printed just before a crash or a timeout still reaches the log.
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    chan.send({"t": "hello", "pid": os.getpid()})
    msg = chan.recv()
    if msg is None or msg.get("t") != "init":
        return 0
    handler = init_phase(chan)
    if handler is None:
        return 1
    return serve(chan, handler)


if __name__ == "__main__":
    sys.exit(main())
