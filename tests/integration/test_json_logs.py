"""Lambda's JSON log format end to end (issue 22): the function's records as JSON lines with
timestamp, level, requestId and message, filtered by ApplicationLogLevel; the platform
records (start, report) as JSON, filtered by SystemLogLevel; set over gRPC."""

from __future__ import annotations

import json

import pytest

from runner.service.proto import runner_api_pb2 as pb
from tests.integration.conftest import Client, server  # noqa: F401 (fixture)

PY = ("import logging\nlog = logging.getLogger('app')\n"
      "def handler(e, c):\n    log.debug('dbg')\n    log.info('info %s', e.get('n'))\n"
      "    log.warning('careful')\n    if e.get('fail'):\n        raise KeyError('boom')\n"
      "    return 'ok'\n")
NODE = ("exports.handler = async (e) => { console.debug('dbg'); console.log('info', e.n);\n"
        "  console.warn('careful'); if (e.fail) throw new TypeError('boom'); return 'ok'; };\n")


def _zip(tmp_path, name, files):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for fn, text in files.items():
            z.writestr(fn, text)
    return buf.getvalue()


def _records(lines):
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("runtime, handler, files", [
    ("python", "app.handler", {"app.py": PY}),
    ("nodejs", "index.handler", {"index.js": NODE}),
])
def test_json_logs_with_levels(server, tmp_path, runtime, handler, files):  # noqa: F811
    runner, address = server
    c = Client(address)
    try:
        info = c.deploy("fn", _zip(tmp_path, "fn", files), runtime=runtime, handler=handler,
                        log_format="JSON", application_log_level="INFO", system_log_level="INFO")
        assert (info.config.log_format, info.config.application_log_level) == ("JSON", "INFO")
        ok = c.invoke("fn", b'{"n": 7}')
        bad = c.invoke("fn", b'{"fail": true}')
        assert bad.function_error == "Unhandled"
    finally:
        c.close()
    recs = _records(runner.read_logs("fn"))  # every line is a JSON record
    mine = [r for r in recs if "level" in r and r.get("requestId") == ok.request_id]
    assert [r["level"] for r in mine] == ["INFO", "WARNING" if runtime == "python" else "WARN"]
    assert "7" in mine[0]["message"] and mine[0]["timestamp"].endswith("Z")
    types = [r["type"] for r in recs if "type" in r]
    assert types == ["platform.start", "platform.report"] * 2  # INFO: no runtimeDone
    report = [r for r in recs if r.get("type") == "platform.report"]
    assert report[0]["record"]["requestId"] == ok.request_id
    assert report[0]["record"]["status"] == "success"
    assert report[0]["record"]["metrics"]["billedDurationMs"] >= 1
    assert "initDurationMs" in report[0]["record"]["metrics"]
    assert report[1]["record"]["status"] == "error"
    [err] = [r for r in recs if r.get("requestId") == bad.request_id and "errorType" in r]
    assert err["level"] == "ERROR" and err["errorType"] in ("KeyError", "TypeError")


def test_levels_filter_and_text_stays_text(server, tmp_path):  # noqa: F811
    runner, address = server
    c = Client(address)
    try:
        c.deploy("quiet", _zip(tmp_path, "q", {"app.py": PY}), runtime="python",
                 handler="app.handler", log_format="JSON", application_log_level="ERROR",
                 system_log_level="WARN")
        c.invoke("quiet", b"{}")
        c.deploy("text", _zip(tmp_path, "t", {"app.py": PY}), runtime="python",
                 handler="app.handler")
        c.invoke("text", b"{}")
        c.deploy("debug", _zip(tmp_path, "d", {"app.py": PY}), runtime="python",
                 handler="app.handler", log_format="JSON", application_log_level="DEBUG",
                 system_log_level="DEBUG")
        c.invoke("debug", b"{}")
        with pytest.raises(Exception) as exc:  # levels need JSON
            c.deploy("text", runtime="python", handler="app.handler",
                     application_log_level="DEBUG")
        assert "application_log_level" in exc.value.details()
    finally:
        c.close()
    assert runner.read_logs("quiet") == []  # nothing at ERROR, no platform records at WARN
    text = runner.read_logs("text")
    assert text[0].startswith("START RequestId") and text[-1].startswith("REPORT RequestId")
    debug = _records(runner.read_logs("debug"))
    assert [r.get("type") for r in debug if "type" in r] == [
        "platform.start", "platform.runtimeDone", "platform.report"]
    assert [r["level"] for r in debug if "level" in r] == ["DEBUG", "INFO", "WARNING"]


def test_grpc_config_fields_round_trip(server):  # noqa: F811
    _, address = server
    c = Client(address)
    try:
        cfg = pb.FunctionConfig(log_format="JSON", system_log_level="DEBUG")
        assert cfg.HasField("log_format") and not cfg.HasField("application_log_level")
    finally:
        c.close()
