"""The embedding API: deploy and invoke functions in-process, without a server.

    from runner import Runner
    with Runner("/tmp/data") as r:
        r.deploy("hello", "guests/python/hello", runtime="python", handler="app.handler")
        result = r.invoke("hello", b'{"name": "ada"}')
        print(result.payload, result.report.line())

The gRPC and HTTP edges are thin adapters over this class, so all behave the same, and they
call nothing else: routes, dead letters and the async queue are reached through its methods.
Here: the stores and the pool the Runner is made of, function management, the async queue,
routes, function logs and the lifecycle. Mixed in by concept: the invoke path (invoke_path.py:
invoke, invoke_stream, invoke_log_later) and the Lambda resources (lambda_resources.py:
versions, aliases, layers, tags, roles).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
from typing import Any, Iterator

from runner.confinement.limits import raise_host_fd_limit
from runner.environments.backends import default_backends
from runner.environments.base import Backend
from runner.errors import InvalidParameter, ResourceConflict, storage_full
from runner.invocation.async_dispatcher import DEFAULT_RETRY_BASE_S, DEFAULT_WORKERS, AsyncInvoker
from runner.invocation.code_input import read_code, zip_directory
from runner.invocation.context import ContextCache
from runner.invocation.invoke_path import InvokePath
from runner.invocation.lambda_resources import LambdaResources
from runner.invocation.log_block import interrupted_note
from runner.invocation.spans import Spans
from runner.metrics import Metrics, NullMetrics
from runner.metrics.host import HostCollector, provisioned_charge
from runner.metrics.minutes import SeriesWriter
from runner.model import LATEST, FunctionConfig, FunctionVersion
from runner.pool.pool import DEFAULT_IDLE_TTL_S, DEFAULT_MAX_ENVIRONMENTS, PoolManager
from runner.storage.data_dir import DataDirLock, SpaceReserve
from runner.storage.events import DeadLetter
from runner.storage.logs import LogStore
from runner.storage.routes import Route
from runner.storage.state import open_state
from runner.storage.tags import SQLiteTagStore

log = logging.getLogger(__name__)

__all__ = ["Runner", "default_data_dir", "read_code", "zip_directory"]


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "lambda-runner")


class Runner(LambdaResources, InvokePath):
    """The whole runner in one object: the stores (functions, logs, routes, events), the pool
    and the async dispatcher. Thread-safe. The stores stay reachable as attributes for tests
    and tools; the edges use the methods."""

    def __init__(
        self,
        data_dir: str | None = None,
        *,
        backends: dict[str, Backend] | None = None,
        idle_ttl_s: float = DEFAULT_IDLE_TTL_S,
        zygote_ttl_s: float | None = None,
        max_environments: int = DEFAULT_MAX_ENVIRONMENTS,
        async_workers: int = DEFAULT_WORKERS,
        async_retry_base_s: float = DEFAULT_RETRY_BASE_S,
        metrics: bool = True,
        state: str | None = None,
        code_store: str | None = None,
        s3_endpoint: str | None = None,
    ) -> None:
        """`state`: None keeps the stores in SQLite under `data_dir`; a postgresql:// URL
        shares them with the other nodes of a cluster (storage/state.py, docs/cluster.md).
        `code_store`: s3://BUCKET[/prefix] keeps a cluster's code and layers in S3 instead
        of the database (with `s3_endpoint` or AWS_ENDPOINT_URL_S3; decision 077)."""
        self.data_dir = os.path.abspath(data_dir or default_data_dir())
        os.makedirs(self.data_dir, exist_ok=True)
        # First: a second runner on this directory is refused before it touches any store.
        self._lock = DataDirLock(self.data_dir)
        self._reserve = SpaceReserve(self.data_dir)
        self._followers_end = threading.Event()  # set by end_log_follows()
        self._route_rng = random.Random()  # alias traffic shifting; unpredictability not needed
        try:
            raise_host_fd_limit()  # environments hold host descriptors: limits.py says how many
            self.tags = SQLiteTagStore(self.data_dir)  # tags.py (issue 20)
            # Functions, routes and the async queue: SQLite here, or shared (storage/state.py).
            self.state = open_state(state, self.data_dir, derived=self._derived,
                                    code_store=code_store, s3_endpoint=s3_endpoint)
            self.layers = self.state.layers  # layers.py (issue 20), shared in a cluster (077)
            self.registry = self.state.registry
            self.aliases = self.state.aliases  # aliases.py (issue 20), in the registry's db
            self.roles = self.state.roles  # roles.py (issue 20)
            self.logs = LogStore(os.path.join(self.data_dir, "logs"))
            self.contexts = ContextCache()  # the Lambda context of each invocation (context.py)
            work = os.path.join(self.data_dir, "envs")
            self.pool = PoolManager(
                backends if backends is not None else default_backends(work),
                idle_ttl_s=idle_ttl_s,
                zygote_ttl_s=zygote_ttl_s,  # None: the idle TTL (pool.py, decision 086)
                max_environments=max_environments,
            )
            self._collect_garbage()
            # Snapshots and provisioned environments of deployed functions come back in the
            # background: the server answers at once, cold starts meanwhile just build on demand.
            self._restorer = threading.Thread(target=self._restore, name="restore", daemon=True)
            self._restorer.start()
            # HTTP routes and async invocation (docs/http-and-async.md).
            self.routes = self.state.routes
            self.events = self.state.events
            # Metrics (docs/observability.md): counters on the invocation path, gauges read
            # from the pool and the queue at scrape time, minute series for the dashboard.
            self.metrics = Metrics() if metrics else NullMetrics()
            self.series = self.state.series  # summed across nodes in a cluster (decision 078)
            counts = self.pool.environment_counts
            self.metrics.registry.register(HostCollector(counts, self.events.pending))
            self._series_writer = SeriesWriter(self.metrics.minutes, self.series,
                                               provisioned_charge(counts, self.metrics.provisioned))
            self._series_writer.start()
            self.spans = Spans.from_settings()  # OTLP export, when a collector is configured
            self.async_invoker = AsyncInvoker(self.invoke, self.registry.resolve, self.events,
                                              workers=async_workers, retry_base_s=async_retry_base_s,
                                              on_interrupted=self._note_interrupted,
                                              metrics=self.metrics, spans=self.spans)
            if hasattr(self.events, "listen"):  # a shared queue: wake on other nodes' events
                self.events.listen(self.async_invoker.wake)
            self.async_invoker.start()  # events accepted before a crash run again from here
        except BaseException:
            if getattr(self, "state", None) is not None:
                self.state.close()
            self._lock.close()  # a runner that failed to start holds nothing
            raise

    # ------------------------------------------------------------------ management

    def deploy(
        self,
        name: str,
        code: bytes | str | os.PathLike | None = None,
        *,
        runtime: str | None = None,
        handler: str | None = None,
        replace_environment: bool = False,
        revision_id: str | None = None,
        must_create: bool = False,
        **settings: Any,
    ) -> FunctionVersion:
        """Create or update a function. On update, settings left out keep their values and
        `code=None` keeps the code. Settings: memory_mb, timeout_s, environment, concurrency
        (which also sets concurrency_reserved unless that is given), ephemeral_storage_mb, network, provisioned. With `revision_id` (see revision_id()),
        the update applies only if nobody changed the function since (PreconditionFailed);
        while another update of the function is in progress, ResourceConflict at once."""
        data = read_code(code)
        env = settings.pop("environment", None)
        if settings.get("concurrency") is not None and settings.get("concurrency_reserved") is None:
            # Naming a concurrency reserves it (decision 079); DeleteFunctionConcurrency passes
            # concurrency_reserved=False with the default back.
            settings["concurrency_reserved"] = True
        if settings.get("layers") is not None:
            settings["layers"] = self.check_layers(list(settings["layers"]))

        def merge(current: FunctionConfig | None) -> FunctionConfig:
            # Called by the registry under its lock with the configuration as it is at the
            # write: merged any earlier, a concurrent update's fields could be overwritten.
            if current is not None and must_create:  # Lambda's CreateFunction
                raise ResourceConflict(f"Function already exist: {name}; update it "
                                       "(update-function-code) or delete it first")
            if current is None:
                if not runtime or not handler:
                    raise InvalidParameter(
                        "runtime" if not runtime else "handler",
                        "required when creating a function (e.g. --runtime python --handler app.handler)",
                    )
                return FunctionConfig(runtime=runtime, handler=handler, environment=env or {},
                                      **{k: v for k, v in settings.items() if v is not None})
            # An empty map on update means "unchanged" unless replace is asked.
            keep_env = env is not None and not replace_environment and not env
            return current.with_changes(runtime=runtime, handler=handler,
                                        environment=None if keep_env else env, **settings)

        # The update is in progress until its environments are ready, not just its write: a
        # second one meanwhile is refused (Lambda's ResourceConflictException), not interleaved.
        with self.registry.updating(name):
            previous = self._latest_or_none(name)
            version = self.registry.deploy(name, merge, data, validate=self._validate,
                                           revision_id=revision_id)
            if previous is not None and previous.revision not in self.registry.published_revisions(name):
                self.pool.retire(previous)
            # Whatever makes the version's cold starts fast is ready when deploy returns (the
            # Python zygote, a Node spare: pool.prewarm); so are provisioned environments, so
            # invocations within the provisioned count never see a cold start.
            self.pool.prewarm(version)
            if not self.state.shared:  # a cluster provisions at the function's home node only
                self.pool.provision(version)  # (runner/cluster/provisioner.py)
        return version

    def _validate(self, version: FunctionVersion) -> None:
        self.pool.backend(version).prepare(version)

    def get(self, name: str, qualifier: str | None = None) -> FunctionVersion:
        return self.registry.resolve(name, qualifier)

    def list(self) -> list[FunctionVersion]:
        return self.registry.list_functions()

    def versions(self, name: str) -> list[FunctionVersion]:
        return self.registry.list_versions(name)

    def publish(self, name: str, *, revision_id: str | None = None) -> FunctionVersion:
        """Freeze $LATEST as the next version; `revision_id` and conflicts as for deploy()."""
        with self.registry.updating(name):
            return self.registry.publish(name, revision_id=revision_id)

    def revision_id(self, version: FunctionVersion) -> str:
        """Lambda's RevisionId of the state `version` shows: a UUID that every change of the
        function (code, configuration, publish) replaces. Stored, so it survives restarts."""
        return self.registry.revision_id(version)

    def delete(self, name: str) -> list[FunctionVersion]:
        """Delete a function. In-flight invocations finish; their environments are destroyed
        when they return, and later invocations get ResourceNotFound."""
        try:
            removed = self.registry.delete(name)
        except Exception as exc:
            # A full disk must not keep a function that frees space from being deleted: spend
            # the reserve (storage/data_dir.py) on it, once.
            if storage_full(exc) is None or not self._reserve.release():
                raise
            log.warning("data directory full: the space reserve is used to delete %s", name)
            removed = self.registry.delete(name)
        for v in removed:
            self.pool.retire(v)
        # What belonged to this function, not to its name: a function created later under
        # the same name starts with none of it (decision 047). Lambda discards the queued
        # events of a deleted function; its dead letters, routes and log go with it too.
        owner = removed[0].function_uid if removed else ""
        self.logs.delete(name, owner)
        self.events.discard_function(name)
        self.routes.delete_function(name)
        self.aliases.forget(name)
        self.tags.forget(name)
        self.metrics.forget(name)
        self._series_writer.flush()  # its open minutes first, or they would come back
        self.series.delete_function(name)
        self._reserve.restore()  # again, if the delete made room
        return removed

    # ------------------------------------------------------------------ async invocation

    def invoke_async(self, name: str, payload: bytes | str | None = None, *,
                     qualifier: str | None = None, key: str | None = None,
                     request_id: str | None = None, trace_id: str | None = None) -> str | None:
        """Queue an asynchronous (Event) invocation durably; returns its request id. It runs
        at least once, with retries and destinations per the function's configuration, each
        attempt under `trace_id` when given. A delivery `key` (push sources: docs/events.md)
        queues it at most once: None if that key was delivered before."""
        return self.async_invoker.submit(name, payload, qualifier, key=key,
                                         request_id=request_id, trace_id=trace_id)

    def dead_letters(self, name: str) -> list[DeadLetter]:
        """Events of `name` that ended in the dead-letter store, oldest first."""
        return self.events.dead_letters(name)

    def replay_dead_letters(self, name: str, request_ids: list[str] | None = None) -> list[str]:
        """Queue dead letters of `name` again (all, or those request ids); returns their ids."""
        return self.async_invoker.replay(name, request_ids)

    # ------------------------------------------------------------------ HTTP routes

    def add_route(self, method: str, path: str, function: str, qualifier: str = "") -> Route:
        """Route `method path` (API Gateway syntax: {param}, {proxy+}, ANY) to a function."""
        return self.routes.add(method, path, function, qualifier)

    def delete_route(self, method: str, path: str) -> Route:
        return self.routes.delete(method, path)

    def list_routes(self) -> list[Route]:
        return self.routes.list()

    @property
    def routes_version(self) -> int:
        """Grows with every route change: a reader rebuilds its table only when it moved."""
        return self.routes.version

    # ------------------------------------------------------------------ logs, lifecycle

    def read_logs(self, name: str, lines: int = 0) -> list[str]:
        self.registry.resolve(name)
        return self.logs.tail(name, lines)

    def follow_logs(self, name: str, lines: int = 0, stop=None) -> Iterator[str]:
        """Existing lines, then new ones as they are written, until `stop` (an Event) is set
        or the runner ends its followers (end_log_follows, close)."""
        self.registry.resolve(name)
        q = self.logs.follow(name)
        try:
            yield from self.logs.tail(name, lines)
            while not (stop is not None and stop.is_set()) and not self._followers_end.is_set():
                try:
                    yield q.get(timeout=0.25)
                except queue.Empty:
                    continue
        finally:
            self.logs.unfollow(name, q)

    def _note_interrupted(self, event, started_at: float) -> None:
        """An async attempt the last crash cut short: named in the function's log before the
        event runs again (async_dispatcher.py), so both runs show there."""
        self.logs.append(event.function, interrupted_note(
            event.id, event.qualifier or LATEST, started_at))

    def end_log_follows(self) -> None:
        """End every follow_logs stream within its next poll (0.25 s): a server shutting down
        waits for in-flight invocations, not for clients that would listen forever."""
        self._followers_end.set()

    def close(self) -> None:
        self.end_log_follows()
        # Events still running when the grace ends stay queued and run after a restart.
        self.async_invoker.close()
        if self.spans is not None:
            self.spans.close()
        self.pool.close()
        self._series_writer.close()  # the open minutes are written: a restart keeps them
        self.state.close()  # the queue, routes, registry; a cluster node leaves the cluster
        self.tags.close()
        self.logs.close()
        self._lock.close()

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _restore(self) -> None:
        for version in self.registry.list_functions():
            if self.pool.closed:
                return
            self.pool.prewarm(version)
            if not self.state.shared:  # as in deploy(): the cluster's provisioner does it
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
