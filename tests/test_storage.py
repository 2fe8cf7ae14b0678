import os

import pytest

from eo4dm_helpers.storage import LockError, atomic_path, clean_temporaries, run_lock, write_text_atomic


def test_atomic_write_replaces_whole_file(tmp_path):
    dest = tmp_path / "a" / "f.txt"
    write_text_atomic(dest, "old")
    write_text_atomic(dest, "new")
    assert dest.read_text() == "new"
    assert [p.name for p in dest.parent.iterdir()] == ["f.txt"]


def test_crash_mid_write_leaves_previous_file_intact(tmp_path):
    dest = tmp_path / "f.txt"
    write_text_atomic(dest, "previous")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("disk full")
    assert dest.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_clean_temporaries(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / ".tmp-abc-f.tif").write_text("partial")
    (tmp_path / "x" / "f.tif").write_text("ok")
    assert clean_temporaries(tmp_path) == 1
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["f.tif"]


def test_lock_is_exclusive_and_stale_lock_is_taken_over(tmp_path):
    with run_lock(tmp_path), pytest.raises(LockError, match="locked by another run"), run_lock(tmp_path):
        pass
    assert not (tmp_path / ".eo4dm.lock").exists()
    # a lock left by a process that no longer exists
    import socket

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    (tmp_path / ".eo4dm.lock").write_text(f"{socket.gethostname()}:{pid}")
    with run_lock(tmp_path) as lock:
        assert lock.read_text().endswith(f":{os.getpid()}")
