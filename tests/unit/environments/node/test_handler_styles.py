"""How a Node invocation settles and whose log its output lands in (decision 045).

A handler's style is told by what it does, as Lambda's runtime tells it, never by
`handler.length`: a returned promise answers; otherwise callback() answers, once the event loop
is empty unless `context.callbackWaitsForEmptyEventLoop` is false; a handler that never calls
back answers null once its work is done. Output written before an invocation's reply is its
own; console output of work it left running that runs at the start of the next invocation is
logged there with its own request id under a `[runner]` marker.

Each test starts real `node` processes through the backend (no pool, so nothing is frozen
between invocations: the bootstrap's blocking read is what parks leftover work).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from runner.environments.backends import default_backends
from runner.errors import FunctionError, FunctionTimeout
from tests.unit.environments.node._node_helpers import request, version, write_code

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t(\S+)\t([A-Z]+)\t(.*)$")
LATE = "[runner] output of {}, written by work it left running after it ended:"


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    backends = default_backends(str(tmp_path_factory.mktemp("envs")))
    yield backends["nodejs"]
    for b in backends.values():
        b.close()


@pytest.fixture
def start(backend, tmp_path):
    envs = []

    def start(source: str, **config):
        v = version(write_code(tmp_path / f"code{len(envs)}", {"index.js": source}), **config)
        backend.prepare(v)
        env = backend.create(v)
        envs.append(env)
        env.start()
        return env

    yield start
    for env in envs:
        env.destroy()


def answer(outcome):
    assert outcome.error is None, outcome.error.to_document()
    return json.loads(outcome.payload)


def records(outcome) -> list[tuple[str, str]]:
    """(request id, message) of each console record, and ("", text) for a runner line."""
    out = []
    for line in outcome.logs.decode().splitlines():
        m = LOG_LINE.match(line)
        out.append((m.group(1), m.group(3)) if m else ("", line))
    return out


@pytest.mark.parametrize("source", [
    # rest parameters: handler.length is 1
    "exports.handler = (event, ...rest) => { setTimeout(() => rest[1](null, 'rest'), 5); };",
    # a default value: handler.length is 2
    ("exports.handler = (event, context, callback = null) => {\n"
     "  setTimeout(() => callback(null, 'default'), 5);\n};"),
    # wrapped by a middleware that forwards `arguments`: handler.length is 0
    ("const inner = (event, context, callback) => setTimeout(() => callback(null, 'wrapped'), 5);\n"
     "const wrap = (fn) => function () { fn.apply(this, arguments); };\n"
     "exports.handler = wrap(inner);"),
], ids=["rest", "default", "wrapped"])
def test_a_callback_handler_is_known_by_its_call_not_its_arity(start, source):
    env = start(source)
    expected = re.search(r"null, '(\w+)'", source).group(1)
    assert answer(env.invoke(request({}))) == expected
    assert answer(env.invoke(request({}))) == expected  # warm, same rule


def test_a_handler_that_never_calls_back_answers_null_once_its_work_is_done(start):
    env = start("exports.handler = (e) => {\n"
                "  setTimeout(() => console.log('timer ran'), 30);\n"
                "  return 42;  // not a promise: discarded, as on Lambda\n};")
    req = request({})
    out = env.invoke(req)
    assert out.payload == b"null"
    assert (req.request_id, "timer ran") in records(out)
    # With nothing pending the answer is immediate.
    assert start("exports.handler = (e) => 42;").invoke(request({})).payload == b"null"


def test_callback_waits_for_the_event_loop_by_default(start):
    env = start("exports.handler = (e, context, callback) => {\n"
                "  setTimeout(() => console.log('after callback, before the answer'), 30);\n"
                "  callback(null, 'waited');\n};")
    req = request({})
    out = env.invoke(req)
    assert answer(out) == "waited"
    assert (req.request_id, "after callback, before the answer") in records(out)


def test_callback_answers_at_once_when_told_not_to_wait(start):
    env = start("exports.handler = (e, context, callback) => {\n"
                "  context.callbackWaitsForEmptyEventLoop = false;\n"
                "  setTimeout(() => console.log('left behind'), 20000);\n"
                "  callback(null, 'fast');\n"
                "  console.log('same turn as the callback');\n};")
    req = request({}, timeout_s=30.0)
    t0 = time.monotonic()
    out = env.invoke(req)
    assert answer(out) == "fast"
    assert time.monotonic() - t0 < 10.0  # far below the 20 s timer: it was not waited for
    assert records(out) == [(req.request_id, "same turn as the callback")]
    assert out.reusable


def test_an_error_through_the_callback_answers_at_once(start):
    env = start("exports.handler = (e, context, callback) => {\n"
                "  setTimeout(() => {}, 20000);\n"
                "  callback(new Error('at once'));\n};")
    t0 = time.monotonic()
    out = env.invoke(request({}, timeout_s=30.0))
    assert time.monotonic() - t0 < 10.0
    assert isinstance(out.error, FunctionError) and out.error.message == "at once"
    assert out.reusable


def test_a_returned_promise_answers_whatever_the_parameters(start):
    env = start("exports.handler = async (event, context, callback) => 'promised';")
    assert answer(env.invoke(request({}))) == "promised"


def test_the_first_of_callback_and_promise_wins(start):
    env = start("exports.handler = (e, context, callback) => {\n"
                "  callback(null, 'callback');\n"
                "  return Promise.reject(new Error('ignored, and not an unhandled rejection'));\n};")
    assert answer(env.invoke(request({}))) == "callback"
    assert answer(env.invoke(request({}))) == "callback"


def test_an_uncaught_error_while_the_loop_drains_fails_the_invocation(start):
    env = start("exports.handler = (e, context, callback) => {\n"
                "  setTimeout(() => { throw new RangeError('after the callback'); }, 10);\n"
                "  callback(null, 'not sent');\n};")
    out = env.invoke(request({}))
    assert isinstance(out.error, FunctionError)
    assert (out.error.error_type, out.error.message) == ("RangeError", "after the callback")
    assert not out.reusable  # the runtime exits after an uncaught error, as Lambda's does


def test_a_callback_handler_whose_work_never_ends_times_out(start):
    env = start("exports.handler = (e, context, callback) => {\n"
                "  setInterval(() => {}, 50);\n"
                "  callback(null, 'never sent');\n};", timeout_s=1)
    out = env.invoke(request({}, timeout_s=1.0))
    assert isinstance(out.error, FunctionTimeout) and not out.reusable


def test_output_of_work_left_running_is_marked_in_the_next_log(start):
    env = start("let n = 0;\n"
                "exports.handler = async () => {\n"
                "  n += 1; const k = n;\n"
                "  if (k === 1) setTimeout(() => console.log(`late from ${k}`), 1000);\n"
                "  console.log(`in ${k}`);\n"
                "  return k;\n};")
    first, second = request({}), request({})
    out1 = env.invoke(first)
    assert records(out1) == [(first.request_id, "in 1")]
    # 1 s: left behind by the reply even on a busy machine; due when the next invocation comes.
    time.sleep(1.5)
    out2 = env.invoke(second)
    assert answer(out2) == 2
    assert records(out2) == [
        ("", LATE.format(f"invocation {first.request_id}")),
        (first.request_id, "late from 1"),
        (second.request_id, "in 2"),
    ]
    out3 = env.invoke(request({}))
    assert "late" not in out3.logs.decode()  # nothing left: no marker, no extra turn


def test_output_of_work_left_running_by_init_is_marked(start):
    env = start("setTimeout(() => console.log('init timer'), 1000);\n"
                "exports.handler = async () => 'ok';")
    assert env.init_logs == b""  # init ended before the timer was due
    time.sleep(1.5)
    req = request({})
    out = env.invoke(req)
    assert answer(out) == "ok"
    assert records(out) == [("", LATE.format("the init phase")), ("undefined", "init timer")]


def test_what_init_prints_until_it_is_ready_is_init_output(start):
    env = start("setImmediate(() => console.log('init immediate'));\n"
                "exports.handler = async () => 'ok';")
    assert b"\tundefined\tINFO\tinit immediate\n" in env.init_logs
    assert records(env.invoke(request({}))) == []


def test_writing_to_process_stdout_leaves_no_work_behind(start):
    # process.stdout is an open pipe handle once used (as pino-style loggers use it), yet keeps
    # nothing running: no catch-up turn, no marker, the line in its own invocation's log.
    env = start("exports.handler = async () => { process.stdout.write('raw line\\n'); return 1; };")
    for _ in range(3):
        out = env.invoke(request({}))
        assert answer(out) == 1 and out.logs == b"raw line\n"
