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
    assert capsys.readouterr().out.strip() == "arn:aws:sns:us-east-1:000000000000:orders"
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
    phc.reconnect()
    assert phc.request("POST", "/events/other")[0] == 404  # not ours: a (missing) function route
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
    # A slot that cannot be delivered (no such function) is dropped into the dead-letter store.
    assert cli(addr, "schedule", "add", "orphan", "--function", "ghost", "--expression",
               "rate(1 hour)", "--dead-letter", "dlq") == 0
    runner = push_server[0]
    (letter,) = wait_for(lambda: runner.dead_letters("ghost"), "the orphan slot's dead letter")
    assert letter.record["condition"] == "ResourceNotFound"
    assert json.loads(letter.payload)["detail-type"] == "Scheduled Event"
    capsys.readouterr()
    assert cli(addr, "schedule", "dropped", "orphan") == 0
    assert "ghost" in capsys.readouterr().out
    assert cli(addr, "schedule", "delete", "tick") == 0
    assert cli(addr, "schedule", "get", "tick") == 2


def test_grpc_notify_and_publish_errors(push_server, rec_dir):
    import grpc

    from runner.service.proto import topics_pb2 as tpb
    from runner.service.proto import topics_pb2_grpc as tpb_grpc
    from runner.service.proto import triggers_pb2 as gpb
    from runner.service.proto import triggers_pb2_grpc as gpb_grpc
    from tests.integration.conftest import error_type

    with grpc.insecure_channel(push_server[2]) as ch:
        triggers = gpb_grpc.TriggersStub(ch)
        triggers.AddTrigger(gpb.Trigger(name="t", function="worker", bucket="inbox",
                                        events=["s3:ObjectCreated:Put"], prefix="in/"))
        rec = s3_record("inbox", "in/x", "ObjectCreated:Put", sequencer="0B")
        out = triggers.Notify(gpb.NotifyRequest(body=json.dumps({"Records": [rec]}).encode()))
        assert out.records == 1 and len(out.request_ids) == 1
        got = wait_for(lambda: records(rec_dir, "worker"), "the notified invocation")
        assert got[0][0] == out.request_ids[0]
        with pytest.raises(grpc.RpcError) as e:
            triggers.Notify(gpb.NotifyRequest(body=b"{"))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_type(e.value) == "InvalidRequestContentException"
        topics = tpb_grpc.TopicsStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            topics.Publish(tpb.PublishRequest(topic="none", message="m"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
        topics.CreateTopic(tpb.TopicName(name="t1"))
        with pytest.raises(grpc.RpcError) as e:
            topics.Subscribe(tpb.Subscription(topic="t1", function="worker",
                                              filter_policy_json='{"a": [{"nope": 1}]}'))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "filter_policy" in \
            e.value.details()


def test_deploy_network_policy_over_the_cli(push_server, capsys):
    addr = push_server[2]
    assert cli(addr, "deploy", "netfn", "--runtime", "python", "--handler", "app.handler",
               "--network", "allow=127.0.0.1:9000,localhost:9001", RECORDER) == 0
    capsys.readouterr()
    assert cli(addr, "get", "netfn") == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert cfg["network_policy"] == "allow=127.0.0.1:9000,localhost:9001"
    assert cli(addr, "deploy", "netfn", "--network") == 0  # bare: full
    assert push_server[0].get("netfn").config.network_policy == "full"
    assert cli(addr, "deploy", "netfn", "--network", "allow=example.com:80") == 2
    assert "network" in capsys.readouterr().err
