"""Opt-in V8 startup snapshots (runner/environments/node/snapshot.py, snapshot_build.py): build,
run, fall back."""

from __future__ import annotations

import json
import os

import pytest

from runner.environments.backends import ProcessBackend
from runner.environments.node.process_policy import find_node
from runner.environments.node.runtime import NodeRuntime
from runner.environments.node.snapshot import OPT_IN_VAR, SnapshotStore
from runner.environments.node.snapshot_build import BUILD_LOG_BYTES, _run_bounded, bundle
from tests.unit.environments.node._node_helpers import (
    GUESTS,
    guest,
    guest_process,
    request,
    version,
    write_code,
)

ON = {OPT_IN_VAR: "1"}

STATEFUL = (
    "const loadedAt = process.hrtime.bigint().toString();\n"
    "const atLoad = Math.random();\n"
    "let calls = 0;\n"
    "exports.handler = async (e) => {\n"
    "  calls += 1; console.log('from snapshot');\n"
    "  if (e.fail) throw new Error('snap fail');\n"
    "  return { loadedAt, atLoad, now: Math.random(), calls };\n"
    "};\n"
)


@pytest.fixture
def store(tmp_path):
    node = find_node()
    assert node is not None, "these tests need a `node` binary on PATH (Node 20)"
    s = SnapshotStore(node, str(tmp_path / "snapshots"))
    yield s
    s.close()


@pytest.fixture
def backend(store, tmp_path):
    (tmp_path / "envs").mkdir()
    return ProcessBackend(NodeRuntime(store.node_path, store), str(tmp_path / "envs"))


@pytest.fixture
def envs(backend):
    made = []

    def start(v):
        env = backend.create(v)
        made.append(env)
        env.start()
        return env

    yield start
    for env in made:
        env.destroy()


def test_without_opt_in_no_snapshot_is_built(backend, store):
    v = guest("hello")
    backend.prepare(v)
    assert store.blob_for(v) is None and store.reason(v) is None


def test_snapshot_environments_share_the_build_time_init(backend, store, envs, tmp_path):
    v = version(write_code(tmp_path / "code", {"index.js": STATEFUL}), environment=ON)
    backend.prepare(v)
    blob = store.blob_for(v)
    assert blob is not None and os.path.isfile(blob), store.reason(v)
    a, b = envs(v), envs(v)
    assert "--snapshot-blob" in guest_process(a).cmdline()
    ra = a.invoke(request({}))
    rb = b.invoke(request({}))
    first, second = json.loads(ra.payload), json.loads(rb.payload)
    # Module-level code ran once, at build time: both environments carry its results ...
    assert first["loadedAt"] == second["loadedAt"] and first["atLoad"] == second["atLoad"]
    # ... while V8 reseeds Math.random on deserialisation, so runtime randomness differs.
    assert first["now"] != second["now"]
    assert first["calls"] == second["calls"] == 1
    assert b"\tINFO\tfrom snapshot" in ra.logs
    err = a.invoke(request({"fail": True})).error.to_document()
    assert (err["errorType"], err["errorMessage"]) == ("Error", "snap fail")
    assert json.loads(a.invoke(request({})).payload)["calls"] == 3


def test_heavy_init_guest_runs_from_a_snapshot(backend, store, envs):
    v = guest("heavy_init", environment=ON)
    backend.prepare(v)
    assert store.blob_for(v) is not None, store.reason(v)
    env = envs(v)
    body = json.loads(env.invoke(request({"prefix": "ab"})).payload)
    assert body["entries"] == 18278 and body["count"] > 0
    assert env.init_duration_ms < body["initMs"]  # the index was built at snapshot time


@pytest.mark.parametrize("files,why", [
    ({"index.mjs": "export const handler = async () => 1;"}, "ES modules cannot be snapshotted"),
    ({"package.json": '{"type": "module"}', "index.js": "export const handler = async () => 1;"},
     '"type": "module"'),
])
def test_es_modules_are_not_eligible(tmp_path, files, why):
    with pytest.raises(ValueError) as info:
        bundle(version(write_code(tmp_path, files), environment=ON))
    assert why in str(info.value)


def test_failed_build_falls_back_to_a_normal_start(backend, store, envs):
    v = guest("deps", environment=ON)  # requires a package from node_modules: not bundlable
    backend.prepare(v)
    assert store.blob_for(v) is None
    assert "Cannot find module 'greeter'" in store.reason(v)
    assert "requiring only built-in modules" in store.reason(v)
    env = envs(v)
    assert "--snapshot-blob" not in guest_process(env).cmdline()
    assert json.loads(env.invoke(request({"name": "x"})).payload) == {"greeting": "greetings, x"}


def test_forget_and_close_remove_blobs(backend, store):
    v = guest("hello", environment=ON)
    backend.prepare(v)
    blob = store.blob_for(v)
    assert blob and os.path.isfile(blob)
    store.forget(v)
    assert store.blob_for(v) is None and not os.path.exists(blob)
    backend.prepare(v)
    assert os.path.isfile(store.blob_for(v))
    store.close()
    assert not os.path.exists(store.root)


def test_enabled_store_snapshots_every_eligible_version(tmp_path):
    s = SnapshotStore(find_node(), str(tmp_path / "all"), enabled=True)
    try:
        v = guest("hello")  # no opt-in variable
        s.prepare(v)
        assert s.blob_for(v) is not None
        assert GUESTS.joinpath("hello", "index.js").is_file()
    finally:
        s.close()


def test_retiring_a_version_through_the_backend_drops_its_blob(backend, store):
    v = guest("hello", environment=ON)
    backend.prepare(v)
    blob = store.blob_for(v)
    assert blob and os.path.isfile(blob)
    backend.forget(v)
    assert store.blob_for(v) is None and not os.path.exists(blob)


def test_a_new_store_starts_empty(tmp_path):
    first = SnapshotStore(find_node(), str(tmp_path / "snaps"))
    stale = os.path.join(first.root, "stale-1")  # as left by an earlier server run
    os.makedirs(stale)
    with open(os.path.join(stale, "snapshot.blob"), "wb") as f:
        f.write(b"x" * 10)
    s = SnapshotStore(find_node(), str(tmp_path / "snaps"))
    try:
        assert s.root == first.root and os.listdir(s.root) == []
    finally:
        s.close()


def test_a_store_under_tmp_moves_where_sandboxes_can_read(tmp_path):
    s = SnapshotStore(find_node(), "/tmp/runner-test-snapshots-x")
    try:
        assert not s.root.startswith("/tmp/") and os.path.isdir(s.root)
        assert os.stat(s.root).st_mode & 0o005 == 0o005  # traversable by a guest uid
    finally:
        s.close()


# The build's output is read with bounds (the build runs guest code): the blob streams to a
# file under a cap, stderr is kept up to BUILD_LOG_BYTES, a runaway build is killed.
def test_bounded_build_run_caps_blob_and_log(tmp_path):
    out = str(tmp_path / "blob")
    rc, err, problem = _run_bounded(
        ["/bin/sh", "-c", "cat >/dev/null; head -c 3000000 /dev/zero >&2; printf blob"],
        env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path), stdin=b"x" * 300_000, out_path=out,
        out_cap=1 << 20, timeout=20)
    assert (rc, problem) == (0, None)
    with open(out, "rb") as f:
        assert f.read() == b"blob"
    assert len(err) == BUILD_LOG_BYTES

    rc, _, problem = _run_bounded(["/bin/sh", "-c", "head -c 5000000 /dev/zero"],
                                  env={}, cwd=str(tmp_path), stdin=b"", out_path=out,
                                  out_cap=1 << 20, timeout=20)
    assert problem == "the snapshot blob grew past 1 MB" and rc == -9
    assert os.path.getsize(out) <= 1 << 20

    rc, _, problem = _run_bounded(["/bin/sh", "-c", "exec >&- 2>&-; sleep 30"], env={},
                                  cwd=str(tmp_path), stdin=b"", out_path=out, out_cap=1 << 20,
                                  timeout=0.5)
    assert problem == "the snapshot build ran past 0 s" and rc == -9


def test_closing_the_node_backend_removes_its_snapshot_store(tmp_path):
    # Blobs are 5-10 MB each: a runner that closed without removing them filled /var/tmp.
    import os

    from runner.environments.backends import default_backends

    backends = default_backends(str(tmp_path / "envs"))
    assert "nodejs" in backends, "the test machine installs node (scripts/setup-system.sh)"
    root = backends["nodejs"].runtime_impl.snapshots.root
    os.makedirs(root, exist_ok=True)
    open(os.path.join(root, "x.blob"), "wb").close()
    for b in backends.values():
        b.close()
    assert not os.path.exists(root)
