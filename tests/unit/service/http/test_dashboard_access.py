"""Who may see /ui and /metrics (service/http/dashboard.py): anyone on loopback without a
token; with RUNNER_DASHBOARD_TOKEN, only a caller presenting it; on a non-loopback address
without a token, nobody."""

from __future__ import annotations

from types import SimpleNamespace

from runner.service.http.dashboard import TOKEN_COOKIE, Dashboard


def _req(headers=None, query=None, cookies=None):
    return SimpleNamespace(headers=headers or {}, query=query or {}, cookies=cookies or {})


def _dash(host: str, token: str | None, monkeypatch) -> Dashboard:
    monkeypatch.delenv("RUNNER_DASHBOARD_TOKEN", raising=False)
    return Dashboard(runner=None, executor=None, invocations=None, host=host, token=token)


def test_loopback_without_a_token_is_open(monkeypatch):
    assert _dash("127.0.0.1", None, monkeypatch)._denied(_req()) is None


def test_a_token_is_required_when_set(monkeypatch):
    d = _dash("127.0.0.1", "s3cret", monkeypatch)
    assert d._denied(_req()).status == 401
    assert d._denied(_req(headers={"Authorization": "Bearer wrong"})).status == 401
    assert d._denied(_req(headers={"Authorization": "Bearer s3cret"})) is None
    assert d._denied(_req(query={"token": "s3cret"})) is None
    assert d._denied(_req(cookies={TOKEN_COOKIE: "s3cret"})) is None


def test_beyond_loopback_without_a_token_is_closed(monkeypatch):
    d = _dash("0.0.0.0", None, monkeypatch)
    resp = d._denied(_req())
    assert resp.status == 403 and b"RUNNER_DASHBOARD_TOKEN" in resp.body
    assert _dash("0.0.0.0", "t", monkeypatch)._denied(_req(headers={"Authorization": "Bearer t"})) is None


def test_the_token_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("RUNNER_DASHBOARD_TOKEN", "from-env")
    d = Dashboard(runner=None, executor=None, invocations=None, host="127.0.0.1")
    assert d.token == "from-env"
