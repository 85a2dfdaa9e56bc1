"""A minimal local Lambda Runtime API (the 2018-06-01 interface a runtime interface client
polls), enough to drive AWS's own clients (`awslambdaric`, `aws-lambda-ric`) in the suite:

  GET  /2018-06-01/runtime/invocation/next             -> the next event, with its headers
  POST /2018-06-01/runtime/invocation/{id}/response    -> 202, the handler's result
  POST /2018-06-01/runtime/invocation/{id}/error       -> 202, a handler error
  POST /2018-06-01/runtime/init/error                  -> 202, an init failure

`next` blocks until an event is queued (as on Lambda, where it is the freeze point). The
invoke headers are the ones the clients read: Lambda-Runtime-Aws-Request-Id,
Lambda-Runtime-Deadline-Ms, Lambda-Runtime-Invoked-Function-Arn, Lambda-Runtime-Trace-Id.
HTTP/1.1 keep-alive, as the clients reuse one connection.
"""

from __future__ import annotations

import json
import queue
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
_RESULT = re.compile(rf"^{PREFIX}/invocation/([^/]+)/(response|error)$")
ARN = "arn:aws:lambda:local-1:000000000000:function:bench"


class InvocationFailed(RuntimeError):
    pass


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.body = b""
        self.error_type: str | None = None
        self.finished_at = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client killed mid-poll resets its connection: expected at every cold-start sample.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class RuntimeAPI:
    """Serve the Runtime API on 127.0.0.1 (an ephemeral port); `invoke` queues an event and
    waits for the client's answer."""

    def __init__(self) -> None:
        self.events: queue.Queue = queue.Queue()
        self.pending: dict[str, _Pending] = {}
        self.init_error: bytes | None = None
        self.closed = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK add ~40 ms to
            # a small response: that would measure TCP timers, not the runtime clients.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # the default logs every request to stderr
                pass

            def _reply(self, code: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                # Headers and body in one write: one segment for the client to read.
                self._headers_buffer.append(b"\r\n" + body)
                self.flush_headers()

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage": "not found"}')
                while True:
                    try:
                        rid, payload = api.events.get(timeout=0.5)
                        break
                    except queue.Empty:
                        if api.closed.is_set():
                            self.close_connection = True
                            return
                deadline = int((time.time() + 60) * 1000)
                self._reply(200, payload, {
                    "Lambda-Runtime-Aws-Request-Id": rid,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": ARN,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{rid.replace('-', '')[:24]};Sampled=0",
                })

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else self._read_chunked()
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = body
                    for p in list(api.pending.values()):
                        p.error_type = "init"
                        p.body = body
                        p.done.set()
                    return self._reply(202, b'{"status": "OK"}')
                m = _RESULT.match(self.path)
                p = api.pending.get(m.group(1)) if m else None
                if p is None:
                    return self._reply(404, b'{"errorMessage": "unknown request id"}')
                p.finished_at = time.perf_counter()
                p.body = body
                if m.group(2) == "error":
                    p.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type") or "error"
                self._reply(202, b'{"status": "OK"}')
                p.done.set()

            def _read_chunked(self) -> bytes:
                # Streaming-capable clients may send chunked bodies without Content-Length.
                if "chunked" not in (self.headers.get("Transfer-Encoding") or ""):
                    return b""
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def submit(self, payload: bytes) -> tuple[str, _Pending]:
        rid = str(uuid.uuid4())
        p = self.pending[rid] = _Pending()
        self.events.put((rid, payload))
        return rid, p

    def wait(self, rid: str, p: _Pending, timeout_s: float = 30.0) -> bytes:
        if not p.done.wait(timeout_s):
            raise InvocationFailed(f"no answer for {rid} within {timeout_s}s")
        del self.pending[rid]
        if p.error_type:
            raise InvocationFailed(f"{p.error_type}: {p.body[:300]!r}")
        json.loads(p.body)  # the clients must answer with the event's JSON
        return p.body

    def invoke(self, payload: bytes, timeout_s: float = 30.0) -> bytes:
        rid, p = self.submit(payload)
        return self.wait(rid, p, timeout_s)

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()
