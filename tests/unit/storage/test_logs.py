import threading

from runner.storage import logs as logs_mod
from runner.storage.logs import LogStore


def test_append_tail_and_delete(tmp_path):
    s = LogStore(str(tmp_path))
    s.append("f", "a\nb")
    s.delete("f")
    assert s.tail("f") == []
    s.append("f", "a\nb")
    s.append("f", "c\n")
    assert s.tail("f") == ["a", "b", "c"] and s.tail("f", 2) == ["b", "c"]
    s.delete("f")
    assert s.tail("f") == []
    s.close()


def test_rotation_keeps_one_generation(tmp_path, monkeypatch):
    monkeypatch.setattr(logs_mod, "MAX_LOG_FILE_BYTES", 100)
    monkeypatch.setattr(logs_mod, "MIN_FILE_BYTES", 100)
    s = LogStore(str(tmp_path))
    for i in range(30):
        s.append("f", f"line {i:04d}")
    lines = s.tail("f")
    assert lines[-1] == "line 0029" and len(lines) < 30
    assert (tmp_path / "f.log.1").exists()
    s.close()


def test_open_handles_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(logs_mod, "MAX_OPEN_FILES", 2)
    s = LogStore(str(tmp_path))
    for name in ("a", "b", "c", "a"):
        s.append(name, name)
    assert len(s._files) == 2 and s.tail("a") == ["a", "a"] and s.tail("c") == ["c"]
    s.close()


def test_followers_receive_new_lines_and_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(logs_mod, "FOLLOWER_QUEUE", 3)
    s = LogStore(str(tmp_path))
    q = s.follow("f")
    s.append("f", "1\n2\n3\n4\n5")
    assert [q.get_nowait() for _ in range(3)] == ["1", "2", "3"] and q.empty()
    s.unfollow("f", q)
    s.append("f", "6")
    assert q.empty()
    s.close()


def test_concurrent_blocks_never_interleave(tmp_path):
    s = LogStore(str(tmp_path))
    block = lambda i: "\n".join(f"{i}:{j}" for j in range(50))
    threads = [threading.Thread(target=s.append, args=("f", block(i))) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    lines = s.tail("f")
    for start in range(0, len(lines), 50):
        owners = {line.split(":")[0] for line in lines[start:start + 50]}
        assert len(owners) == 1
    s.close()


def test_reads_wait_for_promised_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(logs_mod, "PENDING_WAIT_S", 30.0)  # a loaded machine may delay the timer
    store = LogStore(str(tmp_path))
    store.append("f", "before")
    store.reserve("f")
    writer = threading.Timer(0.2, store.append, args=("f", "promised"), kwargs={"reserved": True})
    writer.start()
    assert store.tail("f") == ["before", "promised"]  # waited for the promise, not returned early
    writer.join()
    store.close()


def test_a_failed_write_still_keeps_its_promise(tmp_path, monkeypatch):
    import pytest

    store = LogStore(str(tmp_path))
    store.reserve("f")

    def disk_full(name, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_append", disk_full)
    with pytest.raises(OSError):
        store.append("f", "lost", reserved=True)
    monkeypatch.setattr(logs_mod, "PENDING_WAIT_S", 30.0)
    import time

    t0 = time.monotonic()
    assert store.tail("f") == []
    assert time.monotonic() - t0 < 5  # nothing left promised: no wait
    store.close()


def test_an_unkept_promise_delays_reads_only_boundedly(tmp_path, monkeypatch):
    import time

    monkeypatch.setattr(logs_mod, "PENDING_WAIT_S", 0.2)
    store = LogStore(str(tmp_path))
    store.append("f", "line")
    store.reserve("f")  # never kept (say the writer thread died)
    t0 = time.monotonic()
    assert store.tail("f") == ["line"]
    assert 0.15 < time.monotonic() - t0 < 5
    store.close()


def test_close_waits_for_promised_blocks_and_a_late_one_leaves_no_open_file(tmp_path, monkeypatch):
    monkeypatch.setattr(logs_mod, "PENDING_WAIT_S", 30.0)
    store = LogStore(str(tmp_path))
    store.reserve("f")
    writer = threading.Timer(0.2, store.append, args=("f", "kept"), kwargs={"reserved": True})
    writer.start()
    store.close()  # waits for the promise
    writer.join()
    assert (tmp_path / "f.log").read_text() == "kept\n"
    # A promise kept only after close() gave up waiting: written, and no handle stays open.
    monkeypatch.setattr(logs_mod, "PENDING_WAIT_S", 0.05)
    late = LogStore(str(tmp_path))
    late.reserve("g")
    late.close()
    late.append("g", "late", reserved=True)
    assert (tmp_path / "g.log").read_text() == "late\n" and late._files == {}


def test_a_block_cut_short_by_a_full_disk_is_not_left_half_written(tmp_path, monkeypatch):
    import errno

    import pytest

    store = LogStore(str(tmp_path))
    store.append("f", "START a\nEND a\nREPORT a")
    before = store.tail("f")
    real_handle = store._handle

    class FillsUp:  # the disk takes 10 bytes of the block, then is full
        def __init__(self, f):
            self.f, self.room = f, 10

        def write(self, data):
            if self.room <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            n = self.f.write(bytes(data[: self.room]))
            self.room -= n
            return n

        def truncate(self, size):
            return self.f.truncate(size)

    def handle(name):
        f, size = real_handle(name)
        return FillsUp(f), size

    monkeypatch.setattr(store, "_handle", handle)
    with pytest.raises(OSError):
        store.append("f", "START b\n" + "x" * 100 + "\nEND b\nREPORT b")
    monkeypatch.undo()
    assert store.tail("f") == before  # all of the first block, nothing of the second
    store.close()


def _total(root) -> int:
    return sum(p.stat().st_size for p in root.iterdir() if p.name.endswith((".log", ".log.1")))


def test_all_logs_together_stay_under_the_budget_oldest_files_first(tmp_path, monkeypatch):
    monkeypatch.setattr(logs_mod, "MIN_FILE_BYTES", 1024)
    budget = 16 * 1024  # files rotate at 4 KiB: a function keeps at most 8 KiB
    s = LogStore(str(tmp_path), budget_bytes=budget)
    try:
        block = "x" * 500
        quiet = [f"q{i}" for i in range(4)]
        for name in quiet:  # 4 x 4 KB: the budget is full
            for _ in range(8):
                s.append(name, block)
        for i in range(200):  # then one chatty function: 100 KB of blocks
            s.append("chatty", f"{i:04d} {block}")
            assert _total(tmp_path) <= budget
        assert s._total == _total(tmp_path)  # the running count matches the disk
        kept = [bool(s.tail(q)) for q in quiet]
        gone = kept.count(False)
        assert gone >= 1 and kept == [False] * gone + [True] * (4 - gone)  # oldest went first
        assert s.tail("chatty")[-1].startswith("0199")  # the newest block always stays
    finally:
        s.close()


def test_the_budget_counts_what_is_already_on_disk(tmp_path):
    first = LogStore(str(tmp_path), budget_bytes=1 << 20)
    first.append("f", "y" * 10_000)
    first.close()
    again = LogStore(str(tmp_path), budget_bytes=1 << 20)
    assert again._total == _total(tmp_path) >= 10_000
    again.delete("f")
    assert again._total == 0
    again.close()


def test_the_default_budget_is_a_share_of_the_disk_at_most_a_gib(tmp_path):
    import os

    st = os.statvfs(str(tmp_path))
    assert logs_mod.default_budget(str(tmp_path)) == min(
        logs_mod.MAX_LOG_BUDGET_BYTES, int(st.f_blocks * st.f_frsize * logs_mod.BUDGET_SHARE_OF_DISK))
