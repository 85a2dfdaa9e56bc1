"""Mappings round-trip through Lambda's event source mapping JSON (issue 18)."""

from __future__ import annotations

import pytest

from runner.errors import InvalidParameter
from runner.sources.lambda_shape import mapping_from_lambda, mapping_to_lambda
from runner.storage.mapping_model import Mapping


def test_round_trip_of_every_setting():
    m = Mapping.create(function="f", qualifier="live", source_type="redis-stream",
                       endpoint="redis://127.0.0.1:6379/0", name="orders", batch_size=50, batching_window_s=1.5,
                       starting_position="TRIM_HORIZON", report_batch_item_failures=True,
                       bisect_on_error=True, max_retries=5, max_record_age_s=3600, on_failure="stream:dead",
                       parallelization=4, max_concurrency=3, filters=('{"data": {"k": ["v"]}}',))
    doc = mapping_to_lambda(m)
    assert doc["UUID"] == m.uuid
    assert doc["EventSourceArn"].startswith("arn:aws:kinesis:") and doc["EventSourceArn"].endswith(":stream/orders")
    assert doc["FunctionArn"].endswith(":function:f:live")
    assert doc["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert doc["ScalingConfig"] == {"MaximumConcurrency": 3}
    assert doc["DestinationConfig"]["OnFailure"]["Destination"].endswith(":stream/dead")
    back = mapping_from_lambda({**{k: v for k, v in doc.items() if k in (
        "EventSourceArn", "SelfManagedEventSource", "BatchSize", "MaximumBatchingWindowInSeconds",
        "StartingPosition", "BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds",
        "ParallelizationFactor", "FunctionResponseTypes", "DestinationConfig", "FilterCriteria",
        "ScalingConfig")}, "FunctionName": doc["FunctionArn"]})
    again = Mapping.create(uuid=m.uuid, created_at=m.created_at, last_modified=m.last_modified, **back)
    assert again == m


@pytest.mark.parametrize("arn,kind,name", [
    ("arn:aws:sqs:local-1:000000000000:orders.new", "nats-jetstream", "orders.new"),
    ("arn:aws:dynamodb:local-1:000000000000:table/public.items/stream/runner", "postgres-table", "public.items"),
])
def test_the_arn_names_the_source(arn, kind, name):
    out = mapping_from_lambda({"EventSourceArn": arn, "FunctionName": "f",
                               "SelfManagedEventSource": {"Endpoints": {"URL": ["nats://h:1"]}}})
    assert (out["source_type"], out["name"]) == (kind, name)


@pytest.mark.parametrize("doc,field", [
    ({"EventSourceArn": "arn:aws:s3:::bucket"}, "EventSourceArn"),
    ({"Queues": ["x"]}, "Queues"),
    ({"FunctionResponseTypes": ["Other"]}, "FunctionResponseTypes"),
    ({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:r:a:t"}}},
     "DestinationConfig.OnFailure.Destination"),
])
def test_bad_fields_are_named(doc, field):
    with pytest.raises(InvalidParameter) as exc:
        mapping_from_lambda(doc, partial=True)
    assert exc.value.field == field


def test_required_fields_on_create():
    with pytest.raises(InvalidParameter, match="FunctionName"):
        mapping_from_lambda({"EventSourceArn": "arn:aws:kinesis:r:a:stream/s"})


def test_a_password_in_the_url_is_never_shown():
    m = Mapping.create(function="f", source_type="redis-stream", endpoint="redis://:s3cret@127.0.0.1:6379/0",
                       name="s")
    doc = mapping_to_lambda(m)
    assert "s3cret" not in str(doc)
    assert doc["SelfManagedEventSource"]["Endpoints"]["URL"] == ["redis://:****@127.0.0.1:6379/0"]
