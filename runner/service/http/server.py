"""The HTTP front: one aiohttp server on its own thread and event loop, beside gRPC.

Why a thread of its own: `runner serve` is built around gRPC's thread pool; the HTTP front
must start and stop with it without turning the whole process async. Invocations block (they
wait for an execution environment), so handlers hand them to a thread pool sized like gRPC's, and the event
loop only parses and writes HTTP.

Sockets: we bind the listening socket ourselves (so port 0 works and the real port is known
before start() returns) with SO_REUSEADDR and without SO_REUSEPORT, like gRPC's (a second
server on the same port must fail). TCP_NODELAY is set on the listening socket, which Linux
copies to accepted ones, and asyncio/aiohttp set it again on every connection: with Nagle on,
a small response written in two pieces (headers, body) waits for the client's delayed ACK,
about 40 ms, which would dwarf a 0.5 ms warm invoke.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from runner.errors import PlatformError
from runner.service import admission
from runner.service.http.body import READ_KEY, read_body
from runner.service.http.dashboard import Dashboard
from runner.service.http.function_routes import FunctionRoutes
from runner.service.http.invoke_api import PREFIX, InvokeApi
from runner.service.http.lambda_api import LambdaApi, owns
from runner.service.http.lambda_api.dispatch import MAX_REQUEST_BYTES
from runner.service.http.push_api import PushApi
from runner.service.http.status import ERROR_TYPE_HEADER, describe
from runner.service.http.stepfunctions import StepFunctionsApi, is_stepfunctions

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 64  # synchronous invocations at once (admission.py); more get 429 at once
KEEPALIVE_S = 75.0  # idle keep-alive connections are closed after this


class HttpFront:
    """The constructor binds; start() serves; stop() closes the listener, lets in-flight
    requests finish for up to `grace` seconds and releases the loop, thread, executor and
    sockets."""

    def __init__(self, runner, host: str = "127.0.0.1", port: int = 0,
                 workers: int = DEFAULT_WORKERS, grace: float = 5.0, push=None,
                 workflows=None, reuse_port: bool = False, token: str = "",
                 sources=None) -> None:
        self.runner = runner
        # Cluster token (docs/cluster.md): required on the Invoke API, not on function routes,
        # which are a function's public HTTP endpoints as API Gateway serves them.
        self.token = token
        self.host = host
        self.grace = grace
        self._sock = _listen(host, port, reuse_port)  # reuse_port: the nodes of --workers N
        self.port: int = self._sock.getsockname()[1]
        # The invocations' ceiling plus a reserve: Event and DryRun calls, which also run on
        # the pool, are never queued behind synchronous invocations.
        self._executor = ThreadPoolExecutor(max_workers=workers + admission.RESERVE,
                                            thread_name_prefix="http")
        invocations = admission.Slots(workers, "synchronous invocations (HTTP)")
        self._invoke_api = InvokeApi(runner, self._executor, invocations)
        self._routes = FunctionRoutes(runner, self._executor, invocations)
        # sources: the EventSources manager, for the mapping operations (issue 20).
        self._lambda_api = LambdaApi(runner, self._executor, self._invoke_api.handle,
                                     invocations=invocations, sources=sources)
        # Push endpoints (issue 19, docs/events.md), served when a service.push.Push is given.
        self._push = PushApi(push, self._executor) if push is not None else None
        # The Step Functions API (issue 21) when given a workflow engine.
        self._sfn = StepFunctionsApi(workflows, self._executor) if workflows is not None else None
        # /metrics and the dashboard at /ui (docs/observability.md, issue 22).
        self._dashboard = Dashboard(runner, self._executor, invocations, host,
                                    workflows=workflows, push=push, sources=sources)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="http-front",
                                        daemon=True)
        self._web_runner: web.ServerRunner | None = None

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        t0 = time.perf_counter()
        path = request.rel_url.raw_path
        api = owns(path) or (self._push is not None and PushApi.handles(path)) \
            or (self._sfn is not None and is_stepfunctions(request))
        # The cluster token guards the APIs (function routes are public endpoints, and the
        # dashboard has a token of its own).
        if api and self.token:
            refused = await _refusal(request, self.token)
            if refused is not None:
                return refused
        # Lambda API paths (every /YYYY-MM-DD/...) are never function routes (issue 20).
        if owns(path):
            # Invoke is one of the API's operations; its own label keeps its traffic apart.
            is_invoke = path.startswith(PREFIX) and path.endswith("/invocations")
            kind = "invoke_api" if is_invoke else "lambda_api"
            resp = await self._lambda_api.handle(request)
        elif Dashboard.serves(path):
            kind = "dashboard"
            resp = await self._dashboard.handle(request)
        elif self._push is not None and PushApi.handles(path):
            kind = "push"
            resp = await self._push.handle(request)
        elif self._sfn is not None and is_stepfunctions(request):
            kind = "stepfunctions"
            resp = await self._sfn.handle(request)
        else:
            kind = "route"
            resp = await self._routes.handle(request)
        self.runner.metrics.http(kind, resp.status, time.perf_counter() - t0)
        return resp

    async def _start(self) -> None:
        server = web.Server(self._dispatch, access_log=None, keepalive_timeout=KEEPALIVE_S)
        self._web_runner = web.ServerRunner(server, handle_signals=False,
                                          shutdown_timeout=self.grace)
        await self._web_runner.setup()
        await web.SockSite(self._web_runner, self._sock).start()

    def start(self) -> None:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        except BaseException:
            self.stop()
            raise

    async def _stop(self) -> None:
        self._dashboard.close()
        if self._web_runner is not None:
            await self._web_runner.cleanup()
        # Connection tasks still waiting for a next request end here, not at loop close.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # In the loop's own thread: the caller's thread may have a running loop of its own
        # (a Playwright or aiohttp client), where run_until_complete would refuse to run.
        await self._loop.shutdown_asyncgens()

    def stop(self) -> None:
        try:
            if self._thread.is_alive():
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result()
        finally:
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join()
            # Whatever the shutdown raised, the listening socket and the loop's own
            # descriptors (selector, self-pipe) are released: a front stopped is a front gone.
            self._loop.close()
            self._sock.close()
            self._executor.shutdown(wait=True)

    def __enter__(self) -> "HttpFront":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


async def _refusal(request: web.BaseRequest, token: str) -> web.Response | None:
    """None when the request carries the cluster token: as a bearer token, X-Runner-Token, or a
    SigV4 signature with key id `runner` and the token as secret (boto3, the AWS CLI)."""
    from runner.cluster import auth, sigv4

    presented = request.headers.get("Authorization")
    if sigv4.is_sigv4(presented):
        # The signature covers the body's hash: read it now, bounded by the largest request
        # any API takes, and keep it for the handler (which applies its own limit).
        try:
            body = await read_body(request, MAX_REQUEST_BYTES)
        except PlatformError as e:
            status_code, error_type, message = describe(e)
            return web.json_response({"Type": "User", "message": message}, status=status_code,
                                     headers={ERROR_TYPE_HEADER: error_type})
        request[READ_KEY] = body
        try:
            sigv4.verify(request.method, request.rel_url.raw_path,
                         request.rel_url.raw_query_string, request.headers, body, token)
        except sigv4.Refused as e:
            doc = {"Type": "User", "message": str(e)}
            if "X-Amz-Target" in request.headers:  # Step Functions' JSON protocol names it so
                doc["__type"] = e.error_type
            return web.json_response(doc, status=403, headers={ERROR_TYPE_HEADER: e.error_type})
        return None
    if presented is None and "X-Runner-Token" in request.headers:
        presented = "Bearer " + request.headers["X-Runner-Token"]
    if auth.valid(presented, token):
        return None
    return web.json_response(
        {"Type": "User", "message": "authorization: missing or wrong token; send "
         "Authorization: Bearer <RUNNER_TOKEN>, X-Runner-Token, or sign with SigV4 using "
         "access key id 'runner' and RUNNER_TOKEN as the secret"}, status=401,
        headers={"x-amzn-ErrorType": "UnauthorizedException"})


def _listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} for HTTP ({exc.strerror}); "
                      "pick another --http-port") from None
    return sock
