"""Decision 084: the invocation layer's placement hook (Runner.remote_invoke) and the gRPC
edge's implementation of it (Forwarder.invoke_remote), without PostgreSQL.

* The hook is asked for a reserved function's invoke() only, with what the home needs to run
  the call as this node would (the checked body, qualifier, request id, trace, client
  context); None runs it here; `placed` (the gRPC edge) and the other invoke methods never
  ask it. A refusal it raises is the caller's: the async dispatcher defers a throttled event
  as for its own pool's refusal, and keeps the event's retries and records.
* Forwarder.invoke_remote against a real peer node (a Runner behind its gRPC server): the
  peer's response comes back as the result a local call gives, under the request id and
  client context sent; the peer's refusal as the PlatformError it stood for, so that the HTTP
  edge answers 429 TooManyRequestsException.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from runner import Runner
from runner.cluster.router import Router
from runner.environments.fake import FakeBackend
from runner.errors import (
    InternalError,
    InvalidParameter,
    ResourceNotFound,
    StorageFull,
    TooManyRequests,
    ValidationError,
)
from runner.invocation_record import InvocationResult, Report
from runner.service.grpc import convert
from runner.service.grpc.cluster import Forwarder
from runner.service.grpc.server import build_server
from runner.service.grpc.status import ERROR_TYPE_KEY, PeerStatus, peer_error
from runner.service.http.status import describe
from runner.storage.postgres.nodes import Node
from tests.unit.cluster.test_reserved_routing import FakeNodes, _homed

HOLD = threading.Event()  # a call with {"hold": true} waits for it (fills a limit of 1)
HELD = threading.Event()


def _handler(event, ctx):
    if isinstance(event, dict) and event.get("hold"):
        HELD.set()
        HOLD.wait(10)
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("asked to fail")
    return {"event": event, "client_context": ctx.get("client_context")}


@pytest.fixture
def runner(tmp_path):
    backend = FakeBackend(_handler)
    r = Runner(str(tmp_path / "data"), backends={"python": backend}, async_retry_base_s=0.01)
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): pass\n")
    r.deploy("capped", str(code), runtime="python", handler="app.handler", concurrency=1)
    r.deploy("free", str(code), runtime="python", handler="app.handler")
    r.backend = backend
    yield r
    r.close()


class Hook:
    """A remote_invoke that records its calls and answers from `answers` (None: run here;
    an exception: raised), the last answer repeating."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    def __call__(self, version, body, qualifier, request_id, trace_id, client_context):
        self.calls.append((version.name, body, qualifier, request_id, trace_id, client_context))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _remote_result(rid="remote-1") -> InvocationResult:
    return InvocationResult(rid, b'"from home"', None, None, b"tail", Report(rid, 1.0, 1, 128, 1),
                            "$LATEST")


def test_a_reserved_functions_invoke_asks_the_hook_with_what_the_home_needs(runner):
    home = _remote_result()
    runner.remote_invoke = hook = Hook(home)
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    got = runner.invoke("capped", '{"a": 1}', request_id="rid-7", trace_id=trace,
                        client_context={"custom": {"k": "v"}})
    assert got is home
    assert hook.calls == [("capped", b'{"a": 1}', None, "rid-7", trace, {"custom": {"k": "v"}})]
    assert runner.backend.created == 0  # nothing ran here
    # Checked here first: a bad payload or an unknown function never leaves the node.
    with pytest.raises(ResourceNotFound):
        runner.invoke("nope", "{}")
    with pytest.raises(InvalidParameter):
        runner.invoke("capped", "not json")
    assert len(hook.calls) == 1


def test_none_runs_here_and_unreserved_or_placed_calls_never_ask(runner):
    runner.remote_invoke = hook = Hook(None)
    assert runner.invoke("capped", '{"n": 1}').payload == b'{"event": {"n": 1}, ' \
        b'"client_context": null}'
    assert len(hook.calls) == 1 and runner.backend.created == 1
    runner.remote_invoke = hook = Hook(_remote_result())
    assert runner.invoke("free", "{}").request_id != "remote-1"
    runner.invoke("capped", "{}", placed=True)  # the gRPC edge placed it already
    runner.invoke_log_later("capped", "{}")[1].write()  # only the gRPC edge calls it
    runner.invoke_stream("capped", "{}", lambda chunk: None)  # streamed calls run here
    assert hook.calls == []


def test_a_throttled_async_attempt_at_the_home_waits_in_the_queue_here(runner):
    # Refused twice by the home, then run there: the event is neither retried as a failure
    # nor dead-lettered (the dispatcher's own throttle rule), and completes once.
    runner.remote_invoke = hook = Hook(TooManyRequests("at its limit"),
                                       TooManyRequests("at its limit"), _remote_result())
    rid = runner.invoke_async("capped", '{"e": 1}')
    deadline = time.monotonic() + 30
    while runner.events.pending() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runner.events.pending() == 0
    assert [c[3] for c in hook.calls] == [rid] * 3  # every attempt under the event's id
    assert runner.dead_letters("capped") == [] and runner.backend.created == 0


# ---------------------------------------------------------------- conversions


@pytest.mark.parametrize("code,etype,cls,http", [
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "TooManyRequestsException", TooManyRequests, 429),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "StorageFullException", StorageFull, 507),
    (grpc.StatusCode.NOT_FOUND, "ResourceNotFoundException", ResourceNotFound, 404),
    (grpc.StatusCode.INVALID_ARGUMENT, "ValidationException", ValidationError, 400),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "", InternalError, 500),
])
def test_a_peers_status_becomes_the_platform_error_it_stood_for(code, etype, cls, http):
    trailing = ((ERROR_TYPE_KEY, etype),) if etype else ()
    exc = peer_error(PeerStatus(code, "the peer's message", trailing))
    assert type(exc) is cls and exc.message == "the peer's message"
    status, error_type, message = describe(exc)
    assert status == http and message == "the peer's message"
    assert error_type == (etype or "ServiceException")


def test_a_peers_response_converts_back_to_the_result_it_was_made_of():
    ok = InvocationResult("r1", b'{"x": 1}', None, None, b"START...REPORT",
                          Report("r1", 2.5, 3, 128, 40, 12.0, True), "3")
    failed = InvocationResult("r2", b'{"errorMessage": "boom", "errorType": "ValueError", '
                              b'"stackTrace": ["a"], "requestId": "r2"}', "Unhandled",
                              {"errorMessage": "boom", "errorType": "ValueError",
                               "stackTrace": ["a"], "requestId": "r2"}, b"log",
                              Report("r2", 1.0, 1, 128, 40), "$LATEST")
    for result in (ok, failed):
        assert convert.invocation_result(convert.invoke_response(result, tail=True)) == result


# ---------------------------------------------------------------- a real peer node


@pytest.fixture
def peer(runner, tmp_path):
    """(local forwarder, peer runner, name): the peer a Runner behind its gRPC server (as a
    node builds it: with a forwarder, here of an empty view), the home of `name`, a function
    with reserved concurrency 1 deployed on both."""
    view = [Node("me", "127.0.0.1:1", 4), Node("peer", "", 4)]
    name = _homed("capped", view, ["peer", "me"])
    other = Runner(str(tmp_path / "peer"), backends={"python": FakeBackend(_handler)})
    code = str(tmp_path / "code")
    for r in (runner, other):
        r.deploy(name, code, runtime="python", handler="app.handler", concurrency=1)
    server, port = build_server(other, "127.0.0.1", 0, cluster=Forwarder(
        Router(FakeNodes([]), "peer", lambda: 0, 4), "peer"))
    server.start()
    view[1] = Node("peer", f"127.0.0.1:{port}", 4)
    forwarder = Forwarder(Router(FakeNodes(view), "me", lambda: 0, 4), "me")
    yield forwarder, other, name
    HOLD.set()
    forwarder.close()
    server.stop(grace=0).wait()
    other.close()


def test_invoke_remote_runs_at_the_home_and_answers_as_a_local_call(peer, runner):
    forwarder, other, name = peer
    version = runner.get(name)
    trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    got = forwarder.invoke_remote(version, b'{"k": 2}', None, "rid-from-queue", trace,
                                  {"custom": {"a": 1}})
    assert got.request_id == "rid-from-queue" and got.report.request_id == "rid-from-queue"
    assert got.payload == b'{"event": {"k": 2}, "client_context": {"custom": {"a": 1}}}'
    assert got.function_error is None and got.executed_version == "$LATEST"
    assert b"REPORT RequestId: rid-from-queue" in got.log  # the home's tail
    assert b"XRAY TraceId: 1-5759e988-bd862e3fe1be46a994272793" in got.log  # ran traced
    failed = forwarder.invoke_remote(version, b'{"fail": true}', None, None, None, None)
    assert failed.function_error == "Unhandled" and failed.error["errorType"] == "ValueError"
    assert forwarder.forwarded == 2
    assert any("rid-from-queue" in line for line in other.read_logs(name, 0))
    assert runner.backend.created == 0  # nothing ran here


def test_invoke_remote_raises_the_homes_refusal_as_its_platform_error(peer, runner):
    forwarder, other, name = peer
    version = runner.get(name)
    HOLD.clear()
    holder = threading.Thread(target=forwarder.invoke_remote,
                              args=(version, b'{"hold": true}', None, None, None, None))
    holder.start()
    deadline = time.monotonic() + 10
    while not HELD.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(TooManyRequests) as info:
        forwarder.invoke_remote(version, b"{}", None, None, None, None)
    assert info.value.error_type == "TooManyRequestsException"
    HOLD.set()
    holder.join(10)
    # Deleted at the home only: its NotFound, not a run here.
    other.delete(name)
    with pytest.raises(ResourceNotFound):
        forwarder.invoke_remote(version, b"{}", None, None, None, None)
    assert runner.backend.created == 0


def test_a_closed_forwarder_leaves_calls_here(peer, runner):
    forwarder, _, name = peer
    forwarder.close()  # the node is stopping: what its dispatcher still runs stays here
    assert forwarder.invoke_remote(runner.get(name), b"{}", None, None, None, None) is None
