"""The push side through its real edges: the CLI (gRPC) for topics, triggers and schedules,
and the HTTP push endpoints, delivering to the recorder guest through the async queue."""

import json

import pytest

from runner.cli.main import main
from runner.triggers.records import s3_record
from tests.async_helpers import RECORDER, records, wait_for
from tests.integration.push_fixtures import phc, push_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("guests_see_host_files")


@pytest.fixture
def rec_dir(push_server, tmp_path):
    d = tmp_path / "records"
    d.mkdir()
    runner = push_server[0]
    for name in ("worker", "other"):
        runner.deploy(name, RECORDER, runtime="python", handler="app.handler",
                      environment={"RECORD_DIR": str(d)})
    return str(d)


def cli(address, *argv):
    return main([*argv, "--address", address])


def test_topic_cli_and_http_publish(push_server, phc, rec_dir, capsys):
    addr = push_server[2]
    assert cli(addr, "topic", "create", "orders") == 0
    assert capsys.readouterr().out.strip() == "arn:aws:sns:local-1:000000000000:orders"
    assert cli(addr, "topic", "subscribe", "orders", "--function", "worker") == 0
    assert cli(addr, "topic", "subscribe", "orders", "--function", "other",
               "--filter-policy", '{"size": [{"numeric": [">", 10]}]}') == 0
    capsys.readouterr()
    assert cli(addr, "topic", "publish", "orders", "--message", "small one",
               "--attributes", '{"size": 3}') == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["request_ids"]) == 1
    status, _, doc = phc.json("POST", "/topics/orders",
                              json.dumps({"Message": "big one", "Subject": "hi",
                                          "MessageAttributes": {"size": 50}}))
    assert status == 202 and len(doc["invocations"]) == 2
    got = wait_for(lambda: len(records(rec_dir, "worker")) == 2 and records(rec_dir, "worker"),
                   "two deliveries to worker")
    assert sorted(g[1]["Records"][0]["Sns"]["Message"] for g in got) == ["big one", "small one"]
    other = wait_for(lambda: records(rec_dir, "other"), "the filtered delivery")
    assert [o[1]["Records"][0]["Sns"]["Subject"] for o in other] == ["hi"]
    assert cli(addr, "topic", "publish", "nope", "--message", "x") == 2
    assert "ResourceNotFound" in capsys.readouterr().err


def test_trigger_cli_and_s3_endpoint_with_bad_input(push_server, phc, rec_dir, capsys):
    runner, _, addr, _ = push_server
    assert cli(addr, "trigger", "add", "pics", "--function", "worker", "--type", "s3",
               "--bucket", "uploads", "--events", "s3:ObjectCreated:*", "--suffix", ".jpg") == 0
    assert cli(addr, "trigger", "add", "pics2", "--function", "other", "--bucket", "uploads",
               "--prefix", "a/") == 2
    assert "overlap" in capsys.readouterr().err
    rec = s3_record("uploads", "a/cat.jpg", "ObjectCreated:Put", size=5, sequencer="0A")
    status, _, doc = phc.json("POST", "/events/s3", json.dumps({"Records": [rec]}))
    assert status == 202 and doc["records"] == 1 and len(doc["invocations"]) == 1
    got = wait_for(lambda: records(rec_dir, "worker"), "the triggered invocation")
    assert got[0][1] == {"Records": [rec]}
    wait_for(lambda: runner.events.pending() == 0, "the queue to drain")
    bad = [
        (b"not json", 400, "InvalidRequestContentException"),
        (b'{"Records": [{"eventName": 1}]}', 400, "InvalidParameterValueException"),
        (json.dumps({"Records": [s3_record("nobody", "k", "ObjectCreated:Put")]}).encode(),
         404, "ResourceNotFoundException"),
        (b"[" + b" " * (300 * 1024) + b"]", 413, "RequestTooLargeException"),
    ]
    for body, code, etype in bad:
        phc.reconnect()
        status, headers, doc = phc.json("POST", "/events/s3", body)
        assert (status, headers["x-amzn-ErrorType"]) == (code, etype)
        assert doc["Type"] == "User" and doc["message"]
    assert runner.events.pending() == 0
    phc.reconnect()
    assert phc.request("GET", "/events/s3")[0] == 400
    assert cli(addr, "trigger", "list") == 0 and "pics" in capsys.readouterr().out
    assert cli(addr, "trigger", "delete", "pics") == 0


def test_schedule_cli_fires_through_the_running_scheduler(push_server, rec_dir, capsys):
    addr = push_server[2]
    assert cli(addr, "schedule", "add", "tick", "--function", "worker",
               "--expression", "rate(1 hour)", "--input", '{"job": "x"}') == 0
    sched = json.loads(capsys.readouterr().out)
    assert sched["enabled"] is True and sched["timezone"] == "UTC"
    got = wait_for(lambda: records(rec_dir, "worker"), "the first slot (rate fires at start)")
    event = got[0][1]
    assert event["detail-type"] == "Scheduled Event" and event["detail"] == {"job": "x"}
    assert event["id"] == got[0][0]  # the request id is the event id
    assert cli(addr, "schedule", "disable", "tick") == 0
    assert json.loads(capsys.readouterr().out)["enabled"] is False
    assert cli(addr, "schedule", "update", "tick", "--expression", "cron(0 12 ? * MON-FRI *)",
               "--timezone", "Europe/Paris") == 0
    upd = json.loads(capsys.readouterr().out)
    assert upd["expression"] == "cron(0 12 ? * MON-FRI *)" and upd["timezone"] == "Europe/Paris"
    assert cli(addr, "schedule", "list") == 0 and "tick" in capsys.readouterr().out
    assert cli(addr, "schedule", "add", "bad", "--function", "worker",
               "--expression", "cron(0 0 * * * *)") == 2
    assert "expression" in capsys.readouterr().err
    assert cli(addr, "schedule", "dropped", "tick") == 0
    assert cli(addr, "schedule", "delete", "tick") == 0
    assert cli(addr, "schedule", "get", "tick") == 2
