"""The gRPC edge's executor: work a handler defers runs after the RPC's callable returns."""

import logging
import threading

from runner.service.grpc.server import RpcExecutor, after_response


def test_deferred_work_runs_after_the_rpc_on_the_same_thread():
    order = []

    def rpc():
        after_response(lambda: order.append(("deferred", threading.get_ident())))
        order.append(("rpc", threading.get_ident()))
        return "response"

    with RpcExecutor(max_workers=2) as pool:
        assert pool.submit(rpc).result() == "response"
    assert [what for what, _ in order] == ["rpc", "deferred"]
    assert order[0][1] == order[1][1]


def test_outside_the_executor_the_work_runs_at_once():
    done = []
    after_response(lambda: done.append(1))
    assert done == [1]


def test_a_failing_deferral_is_logged_and_the_next_ones_still_run(caplog):
    ran = []

    def rpc():
        after_response(lambda: 1 / 0)
        after_response(lambda: ran.append(True))
        return "ok"

    with caplog.at_level(logging.ERROR, logger="runner.service.grpc.server"):
        with RpcExecutor(max_workers=1) as pool:
            assert pool.submit(rpc).result() == "ok"
            # The thread is clean for the next RPC: nothing deferred leaks into it.
            assert pool.submit(lambda: "next").result() == "next"
    assert ran == [True]
    assert "work deferred after a response failed" in caplog.text


class _RecordingRunner:
    """Stands in for Runner: records, per invocation, whether its log block was left to the
    edge to write after the response (invoke_log_later) or written inline (invoke); can hold
    invocations."""

    def __init__(self, holds=()):
        self.defers = []
        self.holds = list(holds)  # the n-th call waits on holds[n], if there is one
        self.written = []  # log blocks the edge wrote, in order

    def _call(self, deferred):
        from runner.invocation_record import InvocationResult, Report

        n = len(self.defers)
        self.defers.append(deferred)
        if n < len(self.holds):
            self.holds[n].wait(5)
        return InvocationResult("r", b"{}", None, None, b"", Report("r", 1.0, 1, 128, 1), "$LATEST")

    def invoke(self, name, payload, qualifier=None, trace_id=None, client_context=None,
               request_id=None, placed=False):
        return self._call(False)

    def invoke_log_later(self, name, payload, qualifier=None, trace_id=None, client_context=None,
                         request_id=None):
        runner = self

        class Pending:
            def write(self):
                runner.written.append(name)

        return self._call(True), Pending()


def test_log_writes_are_deferred_only_on_a_quiet_server_and_never_with_a_tail(monkeypatch):
    from runner.service.grpc import server
    from runner.service.proto import runner_api_pb2 as pb

    monkeypatch.setattr(server, "DEFER_LOGS_MAX_INFLIGHT", 1)
    runner = _RecordingRunner()
    svc = _invoker(server, runner)
    svc.Invoke(pb.InvokeRequest(name="f", payload=b"{}"), None)
    svc.Invoke(pb.InvokeRequest(name="f", payload=b"{}", log_type=pb.LOG_TYPE_TAIL), None)
    assert runner.defers == [True, False]
    # Outside the RPC executor (as here) the edge writes a handed-over block at once.
    assert runner.written == ["f"]

    # Two at once: the second finds the server busy and writes its log before answering.
    gate = threading.Event()
    busy = _RecordingRunner(holds=[gate])
    svc = _invoker(server, busy)
    first = threading.Thread(target=svc.Invoke, args=(pb.InvokeRequest(name="f"), None))
    first.start()
    while not busy.defers:
        threading.Event().wait(0.01)
    svc.Invoke(pb.InvokeRequest(name="f"), None)
    gate.set()
    first.join()
    assert busy.defers == [True, False]
    assert svc.invocations.held == 0


def _invoker(server, runner):
    from runner.service.admission import Slots

    return server.InvokerServicer(runner, Slots(8, "invocations"), Slots(8, "followers"))


def test_a_port_in_use_is_a_clear_error_not_a_traceback(tmp_path):
    # grpcio 1.8x raises RuntimeError where it used to return 0; `runner serve` reports an
    # OSError with the fix and exits 2.
    import socket

    import pytest

    from runner import Runner
    from runner.service.grpc.server import build_server

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    r = Runner(str(tmp_path / "data"), backends={})
    try:
        with pytest.raises(OSError, match="in use"):
            build_server(r, "127.0.0.1", taken.getsockname()[1])
    finally:
        r.close()
        taken.close()


def test_rpcs_are_counted_by_method_and_code_including_refused_tokens(tmp_path):
    # The RPC metrics wrap each method once, at registration (observe.meter_registrations,
    # decision 085), not through a per-call interceptor: calls through the registered path
    # (generated stubs) and the generic one (health) are counted, and so is a call refused for
    # its token, under the method it named.
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from runner import Runner
    from runner.service.grpc.server import build_server
    from runner.service.proto import runner_api_pb2 as pb
    from runner.service.proto import runner_api_pb2_grpc as pb_grpc
    from tests.metrics_helpers import sample

    r = Runner(str(tmp_path / "data"), backends={})
    server, port = build_server(r, "127.0.0.1", 0, token="sesame")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            ok = (("authorization", "Bearer sesame"),)
            invoker = pb_grpc.InvokerStub(ch)
            try:
                invoker.Invoke(pb.InvokeRequest(name="nope"), metadata=ok)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND
            try:
                invoker.Invoke(pb.InvokeRequest(name="nope"))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
            pb_grpc.FunctionsStub(ch).ListFunctions(pb.ListFunctionsRequest(), metadata=ok)
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
        text = r.metrics.exposition()
        assert sample(text, "runner_rpc_requests_total", method="Invoke", code="NOT_FOUND") == 1
        assert sample(text, "runner_rpc_requests_total", method="Invoke",
                      code="UNAUTHENTICATED") == 1
        assert sample(text, "runner_rpc_requests_total", method="ListFunctions", code="OK") == 1
        assert sample(text, "runner_rpc_requests_total", method="Check", code="OK") == 1
        assert sample(text, "runner_rpc_duration_seconds_count", method="ListFunctions") == 1
    finally:
        server.stop(None)
        r.close()
