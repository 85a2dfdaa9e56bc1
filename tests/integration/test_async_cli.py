"""Async settings, retries, destinations and the dead-letter store through the CLI and gRPC."""

from __future__ import annotations

import json

import pytest

from runner.cli.main import main as cli_main
from tests.async_helpers import RECORDER, records, wait_for
from tests.integration.http_fixtures import http_server  # noqa: F401 (fixture)

# The recorder guest writes into a host directory the test reads back.
pytestmark = pytest.mark.usefixtures("guests_see_host_files")


def test_deploy_flags_retries_dlq_list_and_replay(http_server, tmp_path, capsys):
    runner, address, _ = http_server
    rec = tmp_path / "rec"
    rec.mkdir()
    assert cli_main(["deploy", "--address", address, "rec", RECORDER, "--runtime", "python",
                     "--handler", "app.handler", "--env", f"RECORD_DIR={rec}",
                     "--max-retries", "1", "--max-event-age", "600", "--on-failure", "dlq"]) == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert (cfg["max_retries"], cfg["max_event_age_s"], cfg["on_failure"], cfg["on_success"]) == (
        1, 600, "dlq", "")

    assert cli_main(["invoke", "--address", address, "rec", "--invocation-type", "Event",
                     "--payload", '{"fail": "cli"}']) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["StatusCode"] == 202
    rid = out["RequestId"]
    wait_for(lambda: runner.events.dead_letters("rec"), "the dead letter")
    assert [r for r, _ in records(str(rec), "rec")] == [rid, rid]  # one try + one retry

    assert cli_main(["dlq", "list", "--address", address, "rec"]) == 0
    listing = capsys.readouterr().out
    assert rid in listing and "RetriesExhausted" in listing and "asked to fail: cli" in listing
    assert cli_main(["dlq", "list", "--address", address, "rec", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs[0]["requestContext"]["approximateInvokeCount"] == 2
    assert recs[0]["requestPayload"] == {"fail": "cli"}

    # Fix the cause (no more retries wanted), then replay: the same request id runs again.
    assert cli_main(["deploy", "--address", address, "rec", "--max-retries", "0"]) == 0
    capsys.readouterr()
    assert cli_main(["dlq", "replay", "--address", address, "rec", "unknown-id"]) == 2
    assert "unknown-id" in capsys.readouterr().err
    assert cli_main(["dlq", "replay", "--address", address, "rec"]) == 0
    assert rid in capsys.readouterr().out
    wait_for(lambda: len(records(str(rec), "rec")) == 3, "the replayed event to run")
    wait_for(lambda: runner.events.dead_letters("rec"), "the replay to fail into the store")
    assert runner.events.dead_letters("rec")[0].record["requestContext"]["approximateInvokeCount"] == 1


def test_on_success_destination_via_cli(http_server, tmp_path, capsys):
    _, address, _ = http_server
    rec = tmp_path / "rec"
    rec.mkdir()
    common = ["--runtime", "python", "--handler", "app.handler", "--env", f"RECORD_DIR={rec}"]
    assert cli_main(["deploy", "--address", address, "audit", RECORDER, *common]) == 0
    assert cli_main(["deploy", "--address", address, "src", RECORDER, *common,
                     "--on-success", "audit"]) == 0
    assert cli_main(["invoke", "--address", address, "src", "--invocation-type", "Event",
                     "--payload", '{"order": 7}']) == 0
    rid = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["RequestId"]
    got = wait_for(lambda: records(str(rec), "audit"), "the success record")
    record = got[0][1]
    assert record["requestContext"]["requestId"] == rid
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestPayload"] == {"order": 7}
    assert record["responsePayload"] == {"recorded": rid}


def test_bad_async_flags_name_the_field(http_server, capsys):
    _, address, _ = http_server
    assert cli_main(["deploy", "--address", address, "x", RECORDER, "--runtime", "python",
                     "--handler", "app.handler", "--max-retries", "5"]) == 2
    assert "max_retries" in capsys.readouterr().err


def test_empty_destination_removes_it(http_server, capsys):
    _, address, _ = http_server
    base = ["deploy", "--address", address, "d", RECORDER, "--runtime", "python",
            "--handler", "app.handler"]
    assert cli_main([*base, "--on-success", "audit", "--on-failure", "dlq"]) == 0
    capsys.readouterr()
    assert cli_main(["deploy", "--address", address, "d", "--on-success", ""]) == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert cfg["on_success"] == "" and cfg["on_failure"] == "dlq"
