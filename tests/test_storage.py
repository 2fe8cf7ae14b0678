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
    with run_lock(tmp_path) as holder:
        assert (tmp_path / ".eo4dm.lock").read_text() == holder and holder.endswith(f":{os.getpid()}")


def test_a_lock_naming_this_process_that_it_does_not_hold_is_stale(tmp_path):
    """pid reuse (pid 1 in a container, a reboot): the lock names our pid but we never took it."""
    import socket

    (tmp_path / ".eo4dm.lock").write_text(f"{socket.gethostname()}:{os.getpid()}")
    with run_lock(tmp_path) as holder:
        assert (tmp_path / ".eo4dm.lock").read_text() == holder
    assert not (tmp_path / ".eo4dm.lock").exists()


@pytest.mark.parametrize("kind", ["directory", "dangling symlink", "symlink to a file"])
def test_a_lock_that_is_not_a_regular_file_is_never_taken_over(tmp_path, kind):
    lock = tmp_path / ".eo4dm.lock"
    if kind == "directory":
        lock.mkdir()
    elif kind == "dangling symlink":
        lock.symlink_to(tmp_path / "nowhere")
    else:
        (tmp_path / "elsewhere").write_text("host:1")
        lock.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LockError, match="is not a regular file: remove it if no run is active"), run_lock(tmp_path):
        pass
    assert lock.is_symlink() or lock.is_dir()  # left as it was


def test_archive_lock_reuses_the_runners_lock_and_refuses_a_lost_one(tmp_path):
    from eo4dm_helpers.storage import archive_lock, read_lock

    with run_lock(tmp_path) as holder:
        with archive_lock(tmp_path, holder) as h:  # a kernel of the run that holds the lock
            assert h == holder and read_lock(tmp_path) == holder
        with pytest.raises(LockError, match="no longer holds the lock"), archive_lock(tmp_path, "otherhost:12"):
            pass
    with archive_lock(tmp_path) as h:  # a notebook run by hand: takes the lock for the write
        assert read_lock(tmp_path) == h
    assert read_lock(tmp_path) is None
