"""What the Runner's tests share: a Runner with one deployed function on FakeBackend."""

import pytest

from runner import Runner


@pytest.fixture
def fake_runner(tmp_path):
    from runner.environments.fake import FakeBackend

    backend = FakeBackend(lambda e, c: e)
    r = Runner(str(tmp_path / "data"), backends={"python": backend})
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): pass\n")
    r.deploy("fn", str(code), runtime="python", handler="app.handler")
    r.backend = backend
    yield r
    r.close()
