"""The embedding API: deploy and invoke functions in-process, without a server.

    from runner import Runner
    with Runner("/tmp/data") as r:
        r.deploy("hello", "guests/python/hello", runtime="python", handler="app.handler")
        result = r.invoke("hello", b'{"name": "ada"}')
        print(result.payload, result.report.line())

The gRPC service is a thin adapter over this class, so both behave the same. The invoke path:
validate the payload -> resolve the version (cached) -> lease an environment from the pool
(cold start if none idle) -> invoke -> give the environment back -> frame the log, build the
report.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import os
import threading
import time
import zipfile
from typing import Any, Callable, Iterator

from runner.confinement.limits import raise_host_fd_limit
from runner.environments.backends import default_backends
from runner.environments.base import Backend, InvokeRequest
from runner.errors import EnvironmentGone, FunctionError, InvalidParameter
from runner.invocation.async_dispatcher import DEFAULT_RETRY_BASE_S, DEFAULT_WORKERS, AsyncInvoker
from runner.model import (
    MAX_PAYLOAD_BYTES,
    MB,
    FunctionConfig,
    FunctionVersion,
    InvocationResult,
    Report,
    check_payload,
    function_arn,
    new_request_id,
)
from runner.pool.pool import DEFAULT_IDLE_TTL_S, DEFAULT_MAX_ENVIRONMENTS, PoolManager
from runner.storage.events import EventStore
from runner.storage.functions import SQLiteRegistry
from runner.storage.logs import LogStore
from runner.storage.routes import RouteStore

log = logging.getLogger(__name__)

TAIL_BYTES = 4096
# Context dicts kept for reuse (one per version, qualifier and day); past this the cache is
# dropped whole. 4096 covers far more live versions than one host serves.
MAX_CACHED_CONTEXTS = 4096


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "lambda-runner")


def zip_directory(path: str) -> bytes:
    """Zip a code directory the way `runner deploy DIR` does (relative paths, no links)."""
    if not os.path.isdir(path):
        raise InvalidParameter("code", f"{path!r} is not a directory")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".git"))
            for f in sorted(files):
                full = os.path.join(root, f)
                if os.path.islink(full):
                    continue
                zf.write(full, os.path.relpath(full, path))
    return buf.getvalue()


def read_code(code: bytes | str | os.PathLike | None) -> bytes | None:
    """Code from bytes, a directory (zipped), or a file (a zip or a .wasm module)."""
    if code is None or isinstance(code, bytes):
        return code
    path = os.fspath(code)
    if os.path.isdir(path):
        return zip_directory(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise InvalidParameter("code", f"cannot read {path!r}: {exc.strerror}") from None


class Runner:
    """Registry + pool + logs: the whole runner in one object. Thread-safe."""

    def __init__(
        self,
        data_dir: str | None = None,
        *,
        backends: dict[str, Backend] | None = None,
        idle_ttl_s: float = DEFAULT_IDLE_TTL_S,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
        async_workers: int = DEFAULT_WORKERS,
        async_retry_base_s: float = DEFAULT_RETRY_BASE_S,
    ) -> None:
        self.data_dir = os.path.abspath(data_dir or default_data_dir())
        os.makedirs(self.data_dir, exist_ok=True)
        raise_host_fd_limit()  # environments hold host descriptors: limits.py says how many
        self.registry = SQLiteRegistry(self.data_dir)
        self.logs = LogStore(os.path.join(self.data_dir, "logs"))
        self._contexts: dict[tuple, tuple[int, dict]] = {}  # see _context()
        work = os.path.join(self.data_dir, "envs")
        self.pool = PoolManager(
            backends if backends is not None else default_backends(work),
            idle_ttl_s=idle_ttl_s,
            max_environments=max_environments,
        )
        self._collect_garbage()
        # Snapshots and provisioned environments of deployed functions come back in the
        # background: the server answers at once, cold starts meanwhile just build on demand.
        self._restorer = threading.Thread(target=self._restore, name="restore", daemon=True)
        self._restorer.start()
        # Async invocation and HTTP routes (docs/http-and-async.md).
        self.routes = RouteStore(self.data_dir)
        self.events = EventStore(self.data_dir)
        self.async_invoker = AsyncInvoker(self.invoke, self.registry.resolve, self.events,
                                          workers=async_workers, retry_base_s=async_retry_base_s)
        self.async_invoker.start()  # events accepted before a crash run again from here

    # ------------------------------------------------------------------ management

    def deploy(
        self,
        name: str,
        code: bytes | str | os.PathLike | None = None,
        *,
        runtime: str | None = None,
        handler: str | None = None,
        replace_environment: bool = False,
        **settings: Any,
    ) -> FunctionVersion:
        """Create or update a function. On update, settings left out keep their values and
        `code=None` keeps the code. Settings: memory_mb, timeout_s, environment, concurrency,
        ephemeral_storage_mb, network, provisioned."""
        data = read_code(code)
        current = self.registry.get_config(name)
        env = settings.pop("environment", None)
        if current is None:
            if not runtime or not handler:
                raise InvalidParameter(
                    "runtime" if not runtime else "handler",
                    "required when creating a function (e.g. --runtime python --handler app.handler)",
                )
            config = FunctionConfig(runtime=runtime, handler=handler, environment=env or {},
                                    **{k: v for k, v in settings.items() if v is not None})
        else:
            if env is not None and not replace_environment and not env:
                env = None  # an empty map on update means "unchanged" unless replace is asked
            config = current.with_changes(runtime=runtime, handler=handler, environment=env,
                                          **settings)
        previous = self._latest_or_none(name)
        version = self.registry.deploy(name, config, data, validate=self._validate)
        if previous is not None and previous.revision not in self.registry.published_revisions(name):
            self.pool.retire(previous)
        # Whatever makes the version's cold starts fast is ready when deploy returns (the Python
        # zygote, a Node spare: pool.prewarm); so are provisioned environments, so invocations
        # within the provisioned count never see a cold start.
        self.pool.prewarm(version)
        self.pool.provision(version)
        return version

    def _validate(self, version: FunctionVersion) -> None:
        self.pool.backend(version).prepare(version)

    def get(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        return self.registry.resolve(name, qualifier)

    def list(self) -> list[FunctionVersion]:
        return self.registry.list_functions()

    def versions(self, name: str) -> list[FunctionVersion]:
        return self.registry.list_versions(name)

    def publish(self, name: str) -> FunctionVersion:
        return self.registry.publish(name)

    def delete(self, name: str) -> list[FunctionVersion]:
        """Delete a function. In-flight invocations finish; their environments are destroyed
        when they return, and later invocations get ResourceNotFound."""
        removed = self.registry.delete(name)
        for v in removed:
            self.pool.retire(v)
        self.logs.delete(name)
        return removed

    # ------------------------------------------------------------------ invocation

    def invoke(
        self,
        name: str,
        payload: bytes | str | None = None,
        *,
        qualifier: str | None = None,
        request_id: str | None = None,
        defer: Callable[[Callable[[], None]], None] | None = None,
    ) -> InvocationResult:
        """Invoke synchronously. Platform errors raise; function errors are in the result.

        `defer`, if given, takes the writing of the invocation's log block: it is called with
        a no-argument function that the caller runs later (the gRPC edge runs it once the
        response is sent, off the caller's wait). The result's `log` is then empty; reads of
        the function's log still see the block (LogStore.reserve)."""
        body = check_payload(payload)
        version = self.registry.resolve(name, qualifier)
        rid = request_id or new_request_id()
        cfg = version.config
        started = time.time()
        ctx = self._context(version, qualifier, started)
        while True:
            try:
                lease = self.pool.acquire(version)
            except FunctionError as err:  # init failed: Lambda reports it on the invocation
                init_ms = getattr(err, "init_duration_ms", None)
                report = Report(rid, 0.0, 0, cfg.memory_mb, 0, init_ms, cold_start=True)
                return self._finish(version, rid, None, err, getattr(err, "init_logs", b""), b"", report, defer)
            env = lease.env
            # The deadline counts from the moment the handler may start, as on Lambda: init
            # time of a cold start is not charged to the invocation's timeout.
            deadline = time.monotonic() + cfg.timeout_s
            try:
                # The guest's getRemainingTimeInMillis counts from here too, not from `started`.
                outcome = env.invoke(InvokeRequest(rid, body, cfg.timeout_s, deadline, ctx,
                                                   int((time.time() + cfg.timeout_s) * 1000)))
            except EnvironmentGone:
                self.pool.release(lease, reusable=False)
                if lease.cold:
                    raise  # a fresh environment died before its first invocation: report it
                # Killed while idle (nothing of the invocation reached it): the next idle
                # environment or a cold start takes it. Ends: each pass removes one idle
                # environment, and a cold lease does not loop.
                continue
            except BaseException:
                self.pool.release(lease, reusable=False)
                raise
            break
        self.pool.release(lease, outcome.reusable)
        error = outcome.error
        out = outcome.payload
        if out is not None and len(out) > MAX_PAYLOAD_BYTES:
            error = FunctionError(
                f"Response payload size ({len(out)} bytes) exceeded maximum allowed payload "
                f"size ({MAX_PAYLOAD_BYTES} bytes).", "Function.ResponseSizeTooLarge")
            out = None
        report = Report(
            request_id=rid,
            duration_ms=outcome.duration_ms,
            billed_duration_ms=max(1, math.ceil(outcome.duration_ms)),
            memory_size_mb=cfg.memory_mb,
            max_memory_used_mb=math.ceil(outcome.max_memory_bytes / MB),
            init_duration_ms=env.init_duration_ms if lease.cold else None,
            cold_start=lease.cold,
        )
        init_logs = env.init_logs if lease.cold else b""
        return self._finish(version, rid, out, error, init_logs, outcome.logs, report, defer)

    def _context(self, version: FunctionVersion, qualifier: str | None, now: float) -> dict:
        """The Lambda context fields of an invocation (all but its deadline). One dict per
        version, qualifier and UTC day (the log stream's name has the date), reused until
        one of those changes: environments send a guest the context only when it is a new
        object. Read-only once made (InvokeRequest.context says why)."""
        day = int(now // 86400)
        key = (version.key, version.version, qualifier)
        hit = self._contexts.get(key)
        if hit is not None and hit[0] == day:
            return hit[1]
        ctx = {
            "function_name": version.name,
            "function_version": version.version,
            # Lambda reports the ARN as invoked: qualified only if the caller gave a qualifier.
            "invoked_function_arn": function_arn(version.name, qualifier),
            "memory_limit_in_mb": version.config.memory_mb,
            "log_group_name": f"/aws/lambda/{version.name}",
            "log_stream_name": f"{time.strftime('%Y/%m/%d', time.gmtime(now))}/[{version.version}]{version.revision}",
        }
        if len(self._contexts) >= MAX_CACHED_CONTEXTS:
            self._contexts.clear()  # versions come and go; a rebuild costs microseconds
        self._contexts[key] = (day, ctx)
        return ctx

    def check_invoke(self, name: str, payload: bytes | str | None = None, *,
                     qualifier: str | None = None) -> FunctionVersion:
        """A dry run: the checks an invocation makes before running anything."""
        check_payload(payload)
        return self.registry.resolve(name, qualifier)

    def invoke_async(self, name: str, payload: bytes | str | None = None, *,
                     qualifier: str | None = None) -> str:
        """Queue an asynchronous (Event) invocation durably; returns its request id. It runs
        at least once, with retries and destinations per the function's configuration."""
        return self.async_invoker.submit(name, payload, qualifier)

    def _finish(self, version, rid, out, error, init_logs: bytes, logs: bytes, report: Report,
                defer=None):
        if defer is None:
            text = self._write_log(version, rid, error, init_logs, logs, report)
        else:
            self.logs.reserve(version.name)
            defer(functools.partial(self._write_log, version, rid, error, init_logs, logs, report,
                                    reserved=True))
            text = ""
        if error is not None:
            doc = error.to_document()
            payload = json.dumps(doc).encode()
            return InvocationResult(rid, payload, "Unhandled", doc, text.encode(), report, version.version)
        return InvocationResult(rid, out or b"null", None, None, text.encode(), report, version.version)

    def _write_log(self, version, rid, error, init_logs: bytes, logs: bytes, report: Report,
                   reserved: bool = False) -> str:
        """Format the invocation's log block as Lambda does, append it, return it."""
        lines = []
        if init_logs:
            lines.append(init_logs.decode("utf-8", "replace").rstrip("\n"))
        lines.append(f"START RequestId: {rid} Version: {version.version}")
        if logs:
            lines.append(logs.decode("utf-8", "replace").rstrip("\n"))
        if error is not None:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            if error.error_type == "Sandbox.Timedout":
                lines.append(f"{stamp}Z {rid} {error.message}")
            else:
                lines.append(f"[ERROR] {error.error_type}: {error.message}")
        lines.append(f"END RequestId: {rid}")
        lines.append(report.line())
        text = "\n".join(lines) + "\n"
        try:
            self.logs.append(version.name, text, reserved=reserved)
        except OSError as exc:
            # The handler has run: its result must still reach the caller (a retry would run
            # it twice). The block is lost, not cut in half (LogStore); the operator is told.
            log.error("log block of %s (request %s) not written: %s", version.name, rid, exc)
        return text

    # ------------------------------------------------------------------ logs, lifecycle

    def read_logs(self, name: str, lines: int = 0) -> list[str]:
        self.registry.resolve(name)
        return self.logs.tail(name, lines)

    def follow_logs(self, name: str, lines: int = 0, stop=None) -> Iterator[str]:
        """Existing lines, then new ones as they are written, until `stop` (an Event) is set."""
        import queue as _queue

        self.registry.resolve(name)
        q = self.logs.follow(name)
        try:
            yield from self.logs.tail(name, lines)
            while stop is None or not stop.is_set():
                try:
                    yield q.get(timeout=0.25)
                except _queue.Empty:
                    continue
        finally:
            self.logs.unfollow(name, q)

    def close(self) -> None:
        # Events still running when the grace ends stay queued and run after a restart.
        self.async_invoker.close()
        self.pool.close()
        self.events.close()
        self.routes.close()
        self.registry.close()
        self.logs.close()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _restore(self) -> None:
        for version in self.registry.list_functions():
            if self.pool.closed:
                return
            self.pool.prewarm(version)
            self.pool.provision(version, wait=False)

    def _latest_or_none(self, name: str) -> FunctionVersion | None:
        try:
            return self.registry.resolve(name)
        except Exception:
            return None

    def _collect_garbage(self) -> None:
        """Code packages no revision references (left by deletes) are removed at start-up, when
        no environment can be using them."""
        for digest in self.registry.unreferenced_code():
            self.registry.code.remove(digest)
