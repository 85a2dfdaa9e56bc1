import uuid

import pytest

from runner.errors import InvalidParameter
from runner.invocation_record import Report
from runner.model import (
    DEFAULT_CONCURRENCY,
    FunctionConfig,
    function_arn,
    normalize_runtime,
    validate_name,
)


def test_runtime_aliases():
    assert normalize_runtime("python3.11") == "python"
    assert normalize_runtime("nodejs20.x") == "nodejs"
    assert normalize_runtime("WASM") == "wasm"
    with pytest.raises(InvalidParameter, match="runtime: unknown runtime 'ruby'"):
        normalize_runtime("ruby")


def test_defaults_and_vcpus():
    c = FunctionConfig("python", "app.handler")
    assert (c.memory_mb, c.timeout_s, c.concurrency) == (128, 3.0, 10)
    assert FunctionConfig("python", "a.b", memory_mb=1769).vcpus == pytest.approx(1.0)


@pytest.mark.parametrize("kw,field", [
    ({"memory_mb": 127}, "memory_mb"), ({"memory_mb": 10241}, "memory_mb"),
    ({"memory_mb": True}, "memory_mb"), ({"timeout_s": 0}, "timeout_s"),
    ({"timeout_s": 900.5}, "timeout_s"), ({"concurrency": 0}, "concurrency"),
    ({"provisioned": 11}, "provisioned"), ({"environment": {"a-b": "x"}}, "environment"),
    ({"environment": {"K": 1}}, "environment"), ({"environment": {"K": "x" * 5000}}, "environment"),
    ({"environment": {"K": "a\0b"}}, "environment"),  # no process could start with it
    ({"handler": "has space.fn"}, "handler"), ({"handler": "m." + "x" * 130}, "handler"),
])
def test_invalid_values_name_the_field(kw, field):
    args = {"runtime": "python", "handler": "app.handler", **kw}
    with pytest.raises(InvalidParameter) as e:
        FunctionConfig(**args)
    assert e.value.field == field and str(e.value).startswith(field + ":")


def test_handlers_per_runtime():
    FunctionConfig("python", "pkg.sub.mod.handler")
    FunctionConfig("nodejs", "src/index.handler")
    FunctionConfig("wasm", "_start")
    # Lambda accepts these at deploy and reports at invoke (issue 20).
    FunctionConfig("python", "src/app.handler")
    FunctionConfig("nodejs", "index")
    with pytest.raises(InvalidParameter):
        FunctionConfig("nodejs", "index handler")


def test_round_trip_and_changes():
    c = FunctionConfig("python3.12", "app.handler", memory_mb=512, environment={"A": "1"})
    assert FunctionConfig.from_dict(c.to_dict()) == c
    d = c.with_changes(memory_mb=None, timeout_s=9)
    assert d.memory_mb == 512 and d.timeout_s == 9
    with pytest.raises(InvalidParameter):
        c.with_changes(memory_mb=1)


def test_names():
    assert validate_name("my-func_1") == "my-func_1"
    for bad in ("", "a b", "a" * 65, "a:b"):
        with pytest.raises(InvalidParameter, match="^name:"):
            validate_name(bad)


def test_report_line_matches_lambda():
    r = Report("id", 1.234, 2, 128, 40, init_duration_ms=10.5, cold_start=True)
    assert r.line() == ("REPORT RequestId: id\tDuration: 1.23 ms\tBilled Duration: 2 ms\t"
                        "Memory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 10.50 ms")
    assert "Init" not in Report("id", 1, 1, 128, 1).line()


def test_arn():
    assert function_arn("f") == "arn:aws:lambda:us-east-1:000000000000:function:f"
    assert function_arn("f", "3").endswith(":function:f:3")


def test_request_ids_are_version_4_uuids_and_unique():
    from runner.invocation_record import new_request_id

    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for rid in ids[:100]:
        u = uuid.UUID(rid)
        assert str(u) == rid and u.version == 4 and u.variant == uuid.RFC_4122


def test_request_ids_are_what_uuid_makes_of_the_same_bits(monkeypatch):
    import random

    from runner import invocation_record

    monkeypatch.setattr(invocation_record, "_ids", random.Random(7))
    ours = [invocation_record.new_request_id() for _ in range(1000)]
    bits = random.Random(7)
    assert ours == [str(uuid.UUID(int=bits.getrandbits(128), version=4)) for _ in range(1000)]


def test_a_forked_child_does_not_repeat_its_parents_request_ids():
    import os
    import warnings

    from runner.invocation_record import new_request_id

    r, w = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns when forking a process with threads; the child here only writes
        # to a pipe and exits, which is safe with any thread state.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child writes its next id and exits without running pytest's teardown
        os.write(w, new_request_id().encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert child != new_request_id()


JSON_CASES = [b'{"a": 1}', b' {"a":1}\n', b"[1,2]", b'"s"', b"1", b"null", b"NaN", '{"é": 1}'.encode(),
              '{"a":1}'.encode("utf-16"), b'{"a":1} x', b"{", b"\xff", b'{"a": 1}{}', b"[1,]", b"tru"]


@pytest.mark.parametrize("body", JSON_CASES)
def test_check_payload_accepts_exactly_what_json_loads_accepts(body):
    import json

    from runner.errors import InvalidRequestContent
    from runner.invocation_record import check_payload

    try:
        json.loads(body)
    except ValueError as exc:
        with pytest.raises(InvalidRequestContent) as err:
            check_payload(body)
        assert str(exc) in str(err.value)  # the parser's own wording, position included
    else:
        assert check_payload(body) == body


def test_check_payload_refuses_deep_nesting_as_bad_content():
    from runner.errors import InvalidRequestContent
    from runner.invocation_record import check_payload

    with pytest.raises(InvalidRequestContent, match="nested too deeply"):
        check_payload(b"[" * 100_000 + b"]" * 100_000)
    assert check_payload(b"  ") == b"null" and check_payload(None) == b"null"


@pytest.mark.parametrize("key", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                 "AWS_ACCESS_KEY", "AWS_LAMBDA_FUNCTION_VERSION"])
def test_keys_lambda_reserves_are_refused_as_environment(key):
    with pytest.raises(InvalidParameter, match=f"environment: key '{key}' is reserved"):
        FunctionConfig("python", "app.handler", environment={key: "x"})


def test_a_stored_function_with_credential_keys_still_loads_but_cannot_be_updated_with_them():
    # Accepted before the credentials were reserved: the registry must still read it.
    stored = {**FunctionConfig("python", "app.handler").to_dict(),
              "environment": {"AWS_ACCESS_KEY_ID": "AKIA", "KEEP": "1"}}
    loaded = FunctionConfig.from_dict(stored)
    assert loaded.environment == {"AWS_ACCESS_KEY_ID": "AKIA", "KEEP": "1"}
    with pytest.raises(InvalidParameter, match="remove it"):
        loaded.with_changes(memory_mb=256)
    assert loaded.with_changes(environment={"KEEP": "1"}).environment == {"KEEP": "1"}


def test_runtime_identifier_follows_the_runtime():
    c = FunctionConfig("python3.11", "app.handler")
    assert c.runtime == "python" and c.runtime_id == "python3.11"
    assert c.with_changes(runtime="python").runtime_id == ""
    n = c.with_changes(runtime="nodejs20.x", handler="index.handler")
    assert (n.runtime, n.runtime_id) == ("nodejs", "nodejs20.x")
    assert c.with_changes(memory_mb=256).runtime_id == "python3.11"
    assert FunctionConfig.from_dict(c.to_dict()) == c


def test_a_stored_config_from_before_the_reserved_flag_is_reserved_when_it_named_a_concurrency():
    base = FunctionConfig("python", "app.handler").to_dict()
    del base["concurrency_reserved"]
    assert not FunctionConfig.from_dict({**base, "concurrency": DEFAULT_CONCURRENCY}).concurrency_reserved
    assert FunctionConfig.from_dict({**base, "concurrency": 3}).concurrency_reserved
    stored = FunctionConfig("python", "app.handler", concurrency=3).to_dict()  # flag stored
    assert not FunctionConfig.from_dict(stored).concurrency_reserved
