"""convert.invoke_response: built from dicts in one constructor call (decision 085), the same
message as one built field by field."""

import pytest

from runner.invocation_record import InvocationResult, Report
from runner.service.grpc import convert
from runner.service.proto import runner_api_pb2 as pb


def _by_fields(r: InvocationResult, tail: bool) -> pb.InvokeResponse:
    rep = r.report
    report = pb.Report(request_id=rep.request_id, duration_ms=rep.duration_ms,
                       billed_duration_ms=rep.billed_duration_ms,
                       memory_size_mb=rep.memory_size_mb,
                       max_memory_used_mb=rep.max_memory_used_mb, cold_start=rep.cold_start)
    if rep.init_duration_ms is not None:
        report.init_duration_ms = rep.init_duration_ms
    resp = pb.InvokeResponse(payload=r.payload, function_error=r.function_error or "",
                             executed_version=r.executed_version, report=report,
                             request_id=r.request_id, status_code=200)
    if r.error:
        resp.error.CopyFrom(pb.FunctionErrorDetail(
            error_type=r.error["errorType"], error_message=r.error["errorMessage"],
            stack_trace=r.error["stackTrace"]))
    if tail:
        resp.log_result = r.log_tail()
    return resp


@pytest.mark.parametrize("cold", [False, True])
@pytest.mark.parametrize("failed", [False, True])
@pytest.mark.parametrize("tail", [False, True])
def test_invoke_response_is_the_message_built_field_by_field(cold, failed, tail):
    report = Report("rid-1", 1.25, 2, 128, 31, init_duration_ms=3.5 if cold else None,
                    cold_start=cold)
    error = {"errorType": "ValueError", "errorMessage": "no", "stackTrace": ["a", "b"]}
    result = InvocationResult("rid-1", b'{"errorType": "ValueError"}' if failed else b'{"ok": 1}',
                              "Unhandled" if failed else None, error if failed else None,
                              b"START ...\nREPORT ...\n", report, "$LATEST")
    got = convert.invoke_response(result, tail)
    assert got == _by_fields(result, tail)
    assert got.SerializeToString(deterministic=True) == \
        _by_fields(result, tail).SerializeToString(deterministic=True)
    assert got.report.HasField("init_duration_ms") is cold
