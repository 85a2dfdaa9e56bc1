"""GET /metrics (Prometheus) and the dashboard at /ui: its static files and its JSON API.

    /metrics                                    the Prometheus text format
    /ui/                                        the single-page dashboard (ui/index.html)
    /ui/static/<file>                           its script, styles and the vendored uPlot
    /ui/api/functions?window=S                  every function with its summary over S seconds
    /ui/api/functions/{name}?window=S           configuration, versions, chart series, routes
    /ui/api/functions/{name}/logs?lines=N       the last N log lines
    /ui/api/functions/{name}/logs/stream        the log as server-sent events (live tail)
    POST /ui/api/functions/{name}/invoke        invoke with the body as payload: result + log
    /ui/api/usage?since=S                       requests and GB-seconds per function per day
    /ui/api/workflows                           state machines, executions counted by status
    /ui/api/workflows/{machine}                 its states (graph) and newest executions
    /ui/api/workflows/{machine}/executions/{name}  an execution: states coloured by outcome

Every asset is in the package: nothing is fetched from the network at run time.

Access: the server listens on loopback unless told otherwise. When RUNNER_DASHBOARD_TOKEN is
set, /metrics and /ui need it (`Authorization: Bearer <token>`, or `?token=` once, which sets a
cookie for the pages); a server on a non-loopback address without a token refuses /ui and
/metrics (403) rather than showing functions and logs to the network.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import threading
import time
from concurrent.futures import Executor

from aiohttp import web

from runner import settings
from runner.errors import InvalidParameter, ResourceNotFound
from runner.metrics import CONTENT_TYPE_LATEST, views
from runner.model import MAX_PAYLOAD_BYTES
from runner.service.admission import Slots
from runner.service.http import dashboard_sources, dashboard_workflows
from runner.service.http.body import read_body
from runner.service.http.status import describe

UI_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ui")
STATIC = {  # the only files served: no path from the request ever reaches the file system
    "app.js": "application/javascript",
    "workflows.js": "application/javascript",
    "app.css": "text/css",
    "uPlot.iife.min.js": "application/javascript",
    "uPlot.min.css": "text/css",
}
MAX_LOG_STREAMS = 16  # each live tail holds a thread of the executor while it lasts
TOKEN_COOKIE = "runner_token"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Dashboard:
    def __init__(self, runner, executor: Executor, invocations: Slots, host: str,
                 token: str | None = None, *, workflows=None, push=None, sources=None) -> None:
        """`workflows` (a WorkflowEngine), `push` (service.push.Push) and `sources` (the
        EventSources manager) are optional, as on HttpFront: without them the workflow pages
        say none are configured and a function's page says so for its event sources."""
        self.runner = runner
        self.workflows = workflows
        self.push = push
        self.sources = sources
        self.executor = executor
        self.invocations = invocations
        self.token = token if token is not None else settings.current().dashboard_token
        self.exposed = not _loopback(host)
        self.streams = Slots(MAX_LOG_STREAMS, "dashboard log streams")
        self._tails: set[threading.Event] = set()  # the stop of each live tail (close())

    def close(self) -> None:
        """End every live tail within a second: a server stopping waits for in-flight
        requests, and a browser tab would otherwise hold it for the whole grace period."""
        for stop in list(self._tails):
            stop.set()

    @staticmethod
    def serves(path: str) -> bool:
        return path == "/metrics" or path == "/ui" or path.startswith("/ui/")

    async def _call(self, fn, *args, **kw):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kw))

    def _denied(self, request: web.BaseRequest) -> web.Response | None:
        if self.token is None:
            if self.exposed:
                return _json({"message": "the dashboard and /metrics need a token on a "
                              "non-loopback address: set RUNNER_DASHBOARD_TOKEN"}, 403)
            return None
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        given = given or request.query.get("token", "") or request.cookies.get(TOKEN_COOKIE, "")
        if hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        return _json({"message": "a token is required: Authorization: Bearer <token>, or "
                      "open /ui/?token=<token> once"}, 401)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        denied = self._denied(request)
        if denied is not None:
            return denied
        path = request.rel_url.path
        try:
            if path == "/metrics":
                body = await self._call(self.runner.metrics.exposition)
                return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
            if path in ("/ui", "/ui/"):
                resp = _file("index.html", "text/html")
                if self.token and request.query.get("token"):
                    resp.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="Strict")
                return resp
            if path.startswith("/ui/static/"):
                name = path.removeprefix("/ui/static/")
                if name in STATIC:
                    return _file(name, STATIC[name])
                return _json({"message": f"no such file: {name}"}, 404)
            if path.startswith("/ui/api/"):
                return await self._api(request, path.removeprefix("/ui/api/").strip("/").split("/"))
            return _json({"message": f"no such page: {path}"}, 404)
        except Exception as exc:  # noqa: BLE001 - one table maps every error to a status
            status, kind, message = describe(exc)
            return _json({"message": message, "type": kind}, status)

    async def _api(self, request: web.BaseRequest, parts: list[str]) -> web.StreamResponse:
        window = _int(request.query.get("window", "3600"), "window")
        if parts == ["functions"]:
            return _json(await self._call(self._functions, window))
        if parts == ["usage"]:
            since = _int(request.query.get("since", str(7 * 86400)), "since")
            return _json(await self._call(self._usage, since))
        if parts[0] == "workflows":
            return _json(await self._call(self._workflow_view, parts[1:]))
        if len(parts) >= 2 and parts[0] == "functions":
            name, rest = parts[1], parts[2:]
            if rest == []:
                return _json(await self._call(self._function, name, window))
            if rest == ["logs"]:
                lines = _int(request.query.get("lines", "200"), "lines")
                return _json({"lines": await self._call(self.runner.read_logs, name, lines)})
            if rest == ["logs", "stream"]:
                return await self._stream_logs(request, name)
            if rest == ["invoke"] and request.method == "POST":
                body = await read_body(request, MAX_PAYLOAD_BYTES)
                return _json(await self._call(self._invoke, name, body))
        raise ResourceNotFound(f"no dashboard API at /ui/api/{'/'.join(parts)}")

    # ------------------------------------------------------------------ views (on the executor)

    def _functions(self, window: int) -> dict:
        versions = self.runner.list()
        names = [v.name for v in versions]
        stats = views.summaries(self.runner.series, self.runner.metrics.minutes, names, window)
        out = []
        for v in versions:
            c = v.config
            out.append({"name": v.name, "runtime": c.runtime, "memory_mb": c.memory_mb,
                        "timeout_s": c.timeout_s, "last_modified": v.created_at, **stats[v.name]})
        return {"window": window, "functions": out}

    def _function(self, name: str, window: int) -> dict:
        latest = self.runner.get(name)
        versions = [{"version": v.version, "revision": v.revision, "created_at": v.created_at,
                     "code_sha256": v.code_sha256} for v in self.runner.versions(name)]
        return {
            "name": name,
            "config": latest.config.to_dict(),
            "last_modified": latest.created_at,
            "code_sha256": latest.code_sha256,
            "versions": versions,
            "routes": [{"method": r.method, "path": r.path, "qualifier": r.qualifier}
                       for r in self.runner.list_routes() if r.function == name],
            "dead_letters": len(self.runner.dead_letters(name)),
            "event_sources": dashboard_sources.for_function(name, self.push, self.sources),
            "window": window,
            "series": views.series(self.runner.series, self.runner.metrics.minutes, name, window),
        }

    def _workflow_view(self, rest: list[str]) -> dict:
        if rest == []:
            return dashboard_workflows.machines(self.workflows)
        if len(rest) == 1:
            return dashboard_workflows.machine(self.workflows, rest[0])
        if len(rest) == 3 and rest[1] == "executions":
            return dashboard_workflows.execution(self.workflows, rest[0], rest[2])
        raise ResourceNotFound(f"no dashboard API at /ui/api/workflows/{'/'.join(rest)}; "
                               "use workflows, workflows/MACHINE or "
                               "workflows/MACHINE/executions/NAME")

    def _invoke(self, name: str, body: bytes) -> dict:
        with self.invocations:
            r = self.runner.invoke(name, body)
        return {"request_id": r.request_id, "payload": r.payload.decode(errors="replace"),
                "function_error": r.function_error, "log": r.log.decode(errors="replace"),
                "report": r.report.line(), "executed_version": r.executed_version}

    def _usage(self, since_s: int) -> dict:
        rows = views.daily(self.runner.series, self.runner.metrics.minutes, since_s)
        return {"days": [{"day": time.strftime("%Y-%m-%d", time.gmtime(s.minute)),
                          "function": s.function, "requests": s.invocations,
                          "gb_seconds": round(s.gb_seconds, 6),
                          "provisioned_gb_seconds": round(s.provisioned_gb_seconds, 6)}
                         for s in rows]}

    # ------------------------------------------------------------------ live tail

    async def _stream_logs(self, request: web.BaseRequest, name: str) -> web.StreamResponse:
        self.runner.get(name)  # ResourceNotFound before the stream starts
        with self.streams:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
            await resp.prepare(request)
            loop = asyncio.get_running_loop()
            lines: asyncio.Queue = asyncio.Queue(maxsize=1000)
            stop = threading.Event()

            def pump() -> None:
                try:
                    for line in self.runner.follow_logs(name, 0, stop):
                        loop.call_soon_threadsafe(_offer, lines, line)
                finally:
                    loop.call_soon_threadsafe(_offer, lines, None)

            self._tails.add(stop)
            task = loop.run_in_executor(self.executor, pump)
            quiet = 0
            try:
                while True:
                    try:
                        line = await asyncio.wait_for(lines.get(), 1.0)
                    except asyncio.TimeoutError:
                        if stop.is_set() or task.done():
                            break
                        quiet += 1
                        if quiet >= 15:  # a comment line every 15 s finds a client that left
                            quiet = 0
                            await resp.write(b": keep-alive\n\n")
                        continue
                    if line is None:
                        break
                    await resp.write(f"data: {json.dumps(line)}\n\n".encode())
            except (ConnectionResetError, asyncio.CancelledError):
                pass
            finally:
                stop.set()
                self._tails.discard(stop)
                await asyncio.shield(task)
            return resp


def _offer(q: asyncio.Queue, item) -> None:
    try:
        q.put_nowait(item)
    except asyncio.QueueFull:  # a client that cannot keep up misses lines, never the server
        pass


def _int(raw: str, field: str) -> int:
    try:
        v = int(raw)
    except ValueError:
        raise InvalidParameter(field, f"{raw!r} is not a whole number of seconds/lines") from None
    if v < 0:
        raise InvalidParameter(field, f"{v} is negative; give 0 or more")
    return v


def _json(doc, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(doc).encode(), status=status,
                        content_type="application/json")


def _file(name: str, content_type: str) -> web.Response:
    with open(os.path.join(UI_DIR, name), "rb") as f:
        body = f.read()
    return web.Response(body=body, headers={"Content-Type": content_type + "; charset=utf-8",
                                            "Cache-Control": "no-cache"})
