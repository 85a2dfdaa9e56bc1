from runner.cli.examples import deploy_examples, discover
from tests.conftest import GUESTS


def test_discover_finds_python_examples():
    names = [n for n, _, _ in discover(GUESTS)]
    for expected in ("python-hello", "python-echo", "python-heavy_init", "python-raises",
                     "python-timeout", "python-memory_hog"):
        assert expected in names


def test_deploy_examples_skips_broken_ones(runner, tmp_path):
    good = tmp_path / "ex" / "python" / "ok"
    good.mkdir(parents=True)
    (good / "app.py").write_text("def handler(e, c): return 'ok'\n")
    (good / "function.json").write_text('{"runtime": "python", "handler": "app.handler"}')
    bad = tmp_path / "ex" / "python" / "bad"
    bad.mkdir(parents=True)
    (bad / "function.json").write_text('{"runtime": "python", "handler": "two words"}')
    assert deploy_examples(runner, str(tmp_path / "ex")) == ["python-ok"]
    assert runner.invoke("python-ok").payload == b'"ok"'
