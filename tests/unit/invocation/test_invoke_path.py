"""The invoke path (runner/invocation/invoke_path.py) with environments that need no sandbox
(FakeBackend): the log block, init failures, the guest's deadline, the response size."""

import time

from runner import Runner


def test_a_log_write_that_fails_does_not_lose_the_result(tmp_path, monkeypatch, caplog):
    # The handler has run: a full disk may cost the log block, never the result (a client
    # retrying after an error would run the handler twice).
    import errno
    import logging

    from runner.environments.fake import FakeBackend

    r = Runner(str(tmp_path / "data"), backends={"python": FakeBackend(lambda e, c: {"got": e})})
    try:
        code = tmp_path / "code"
        code.mkdir()
        (code / "app.py").write_text("def handler(e, c): pass\n")
        r.deploy("fn", str(code), runtime="python", handler="app.handler")

        def disk_full(name, text, reserved=False, owner=""):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(r.logs, "append", disk_full)
        with caplog.at_level(logging.ERROR, logger="runner.invocation.log_block"):
            res = r.invoke("fn", b'{"n": 1}')
        assert res.function_error is None and res.payload == b'{"got": {"n": 1}}'
        assert b"REPORT RequestId" in res.log  # the caller still gets the block it asked for
        assert "not written: [Errno 28]" in caplog.text
    finally:
        r.close()


def test_a_cold_starts_init_is_not_taken_from_the_guests_remaining_time(tmp_path, monkeypatch):
    # As on Lambda: the deadline the guest sees (getRemainingTimeInMillis) starts after init.
    from runner.environments.fake import FakeBackend, FakeEnvironment

    seen = []
    real_invoke = FakeEnvironment.invoke
    monkeypatch.setattr(FakeEnvironment, "invoke", lambda self, req: (seen.append(req), real_invoke(self, req))[1])
    r = Runner(str(tmp_path / "data"), backends={"python": FakeBackend(init_delay_s=1.0)})
    try:
        code = tmp_path / "code"
        code.mkdir()
        (code / "app.py").write_text("def handler(e, c): pass\n")
        r.deploy("fn", str(code), runtime="python", handler="app.handler", timeout_s=3)
        res = r.invoke("fn", b"{}")
        assert res.report.cold_start
        left_s = seen[0].deadline_ms / 1000 - time.time()
        assert left_s > 2.5, f"the guest saw {left_s:.2f} s of a 3 s timeout after a 1 s init"
    finally:
        r.close()


def test_an_init_failure_is_reported_with_its_output_and_duration(fake_runner, monkeypatch):
    from runner.environments.fake import FakeEnvironment
    from runner.errors import FunctionInitError

    def failing_start(self):
        self.init_logs = b"loading config\n"
        self.init_duration_ms = 12.5
        raise FunctionInitError("bad config", "Runtime.Unknown")

    monkeypatch.setattr(FakeEnvironment, "start", failing_start)
    res = fake_runner.invoke("fn", b"{}")
    assert res.function_error == "Unhandled"
    assert res.error["errorType"] == "Runtime.Unknown" and res.error["errorMessage"] == "bad config"
    assert res.report.cold_start and res.report.init_duration_ms == 12.5
    text = res.log.decode()
    assert text.startswith("loading config\nSTART RequestId: ")
    assert "[ERROR] Runtime.Unknown: bad config" in text and "Init Duration: 12.50 ms" in text


def test_a_response_over_6_mb_is_refused_by_the_invocation_layer(fake_runner):
    from runner.errors import ResponseSizeTooLarge
    from runner.model import MAX_PAYLOAD_BYTES

    fake_runner.backend.handler = lambda e, c: "x" * MAX_PAYLOAD_BYTES
    res = fake_runner.invoke("fn", b"{}")
    size = MAX_PAYLOAD_BYTES + 2  # the JSON string's quotes
    assert res.error == ResponseSizeTooLarge.of(size, MAX_PAYLOAD_BYTES).to_document()
    assert res.error["errorType"] == ResponseSizeTooLarge.error_type


def test_a_log_block_left_to_the_caller_is_promised_then_written_once(fake_runner):
    import threading

    res, pending = fake_runner.invoke_log_later("fn", b'{"n": 1}')
    assert res.payload == b'{"n": 1}' and res.log == b""
    # A reader waits for the promised block instead of missing it.
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(fake_runner.read_logs("fn")))
    reader.start()
    pending.write()
    pending.write()  # kept once: the store counts one promise per block
    reader.join(5)
    assert any(line.startswith(f"END RequestId: {res.request_id}") for line in lines)
    assert sum(line.startswith("START RequestId:") for line in fake_runner.read_logs("fn")) == 1
