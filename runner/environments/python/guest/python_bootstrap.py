"""The Python runtime inside a sandbox: loads a Lambda handler and serves invocations.

Runs as `python -I -S -B python_bootstrap.py` (stdlib only, no site-packages, no user site).
Talks to the host over the socket whose fd is in `_RUNNER_FD` with length-prefixed msgpack
frames (docs/guest-protocol.md); its stdout and stderr are the environment's log pipe. Here:
the channel, the init phase and the invocation loop; beside it in this folder, the handler's
`context` and the variables naming the invocation (python_lambda_context.py), and the import
of the handler, its errors in Lambda's shape and its logging (python_user_code.py).

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

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _mpack  # noqa: E402  (after the path fix above; stdlib-only codec)
from python_lambda_context import Contexts, trace_var  # noqa: E402
from python_user_code import (  # noqa: E402
    RequestIdFilter,
    error_document,
    load_handler,
    setup_logging,
    stack_trace,
)

del sys.path[0]

_HDR = struct.Struct(">I")
# Lambda's limit on a synchronous response (runner.model.MAX_PAYLOAD_BYTES; the host checks it
# too): refused here, where the size is known, before a frame the host would not accept.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
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


def _maxrss_kb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids)


def invoke(handler, msg):
    """Run one invocation; returns the reply frame."""
    rid = msg["id"]
    RequestIdFilter.request_id = rid
    trace_var.set(msg.get("trace") or "Root=" + rid)  # the caller's trace, if it sent one
    fatal = False
    try:
        event = json.loads(msg["payload"]) if msg["payload"] else None
        result = handler(event, Contexts.for_invoke(msg, rid))
        try:
            try:
                body = json.dumps(result).encode()
            except TypeError:  # Decimal (DynamoDB's numbers) or a type JSON cannot hold
                body = _dumps_decimals(result).encode()
        except (TypeError, ValueError) as e:
            reply = {"t": "error", "id": rid,
                     "error": error_document("Runtime.MarshalError", "Unable to marshal response: %s" % e)}
        else:
            if len(body) > MAX_RESPONSE_BYTES:
                reply = {"t": "error", "id": rid, "error": error_document(
                    "Function.ResponseSizeTooLarge",
                    "Response payload size (%d bytes) exceeded maximum allowed payload size "
                    "(%d bytes)." % (len(body), MAX_RESPONSE_BYTES))}
            else:
                reply = {"t": "result", "id": rid, "payload": body}
    except MemoryError:
        fatal = True
        reply = {"t": "error", "id": rid,
                 "error": error_document("Runtime.OutOfMemory", "Runtime exited: out of memory (MemoryError)")}
    except SystemExit as e:
        fatal = True
        reply = {"t": "error", "id": rid,
                 "error": error_document("Runtime.ExitError", "Runtime exited with status %s" % (e.code,))}
    except BaseException as e:
        reply = {"t": "error", "id": rid, "error": error_document(
            type(e).__name__, str(e), stack_trace(e.__traceback__))}
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
    Contexts.template = None
    RequestIdFilter.request_id = ""
    trace_var.clear()


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
    setup_logging()
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