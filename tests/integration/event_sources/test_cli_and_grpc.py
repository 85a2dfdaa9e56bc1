"""`runner source ...` through the EventSources gRPC service against a real Redis (issue 18)."""

from __future__ import annotations

import json

import redis as redis_client

from runner.cli.main import main as cli_main
from tests.async_helpers import wait_for
from tests.integration.event_sources.helpers import deploy, wait_processed


def test_source_commands_end_to_end(redis, es_server, capsys):
    runner, es, rec, address = es_server
    deploy(runner, rec)
    assert cli_main(["source", "add", "--address", address, "--function", "rec", "--type", "redis-stream",
                     "--endpoint", redis.url, "--name", "events", "--batch-size", "5",
                     "--starting-position", "TRIM_HORIZON", "--report-batch-item-failures",
                     "--bisect-on-error", "--max-retries", "2", "--on-failure", "stream:events-dead",
                     "--parallelization", "2", "--filter", '{"data": {"n": [{"numeric": [">=", 0]}]}}']) == 0
    uuid = capsys.readouterr().out.strip()
    assert len(uuid) == 36
    r = redis_client.Redis.from_url(redis.url)
    for i in range(10):
        r.xadd("events", {"data": json.dumps({"n": i}), "partitionKey": f"k{i % 2}"})
    r.close()
    wait_processed(rec, 10)

    assert cli_main(["source", "list", "--address", address, "--function", "rec"]) == 0
    listing = capsys.readouterr().out
    assert uuid in listing and "Enabled" in listing and "events" in listing

    def processed_count():
        assert cli_main(["source", "get", "--address", address, uuid]) == 0
        doc = json.loads(capsys.readouterr().out)
        return doc if doc["Status"]["stats"].get("processed") == 10 else None

    doc = wait_for(processed_count, "the counts")
    assert doc["BatchSize"] == 5 and doc["ParallelizationFactor"] == 2
    assert doc["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert doc["DestinationConfig"]["OnFailure"]["Destination"].endswith(":stream/events-dead")
    assert doc["LastProcessingResult"] == "OK" and doc["Status"]["running"] is True
    assert "iterator_age_ms" in doc["Status"]["stats"]

    assert cli_main(["source", "update", "--address", address, uuid, "--batch-size", "7"]) == 0
    capsys.readouterr()
    assert es.get(uuid).batch_size == 7
    assert cli_main(["source", "disable", "--address", address, uuid]) == 0
    assert capsys.readouterr().out.split() == [uuid, "Disabled"]
    assert cli_main(["source", "enable", "--address", address, uuid]) == 0
    assert capsys.readouterr().out.split() == [uuid, "Enabled"]
    assert cli_main(["source", "delete", "--address", address, uuid]) == 0
    assert cli_main(["source", "get", "--address", address, uuid]) == 2
    assert "ResourceNotFoundException" in capsys.readouterr().err


def test_bad_input_names_the_field(redis, es_server, capsys):
    runner, es, rec, address = es_server
    deploy(runner, rec)
    base = ["source", "add", "--address", address, "--function", "rec", "--type", "redis-stream",
            "--name", "s"]
    assert cli_main(base + ["--endpoint", "http://nowhere"]) == 2
    err = capsys.readouterr().err
    assert "InvalidParameterValueException" in err and "endpoint" in err
    assert cli_main(base + ["--endpoint", redis.url, "--parallelization", "11"]) == 2
    assert "parallelization" in capsys.readouterr().err
    assert cli_main(base + ["--endpoint", redis.url, "--filter", "{nope"]) == 2
    assert "filters[0]" in capsys.readouterr().err
    assert cli_main(["source", "add", "--address", address, "--function", "missing", "--type", "redis-stream",
                     "--name", "s", "--endpoint", redis.url]) == 2
    assert "ResourceNotFoundException" in capsys.readouterr().err
