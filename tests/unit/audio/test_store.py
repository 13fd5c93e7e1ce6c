"""Project file: round trips, audio stored once, autosave, save, Save As, recovery, bad files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sa3_studio.audio import store
from sa3_studio.audio.store import (
    AUTOSAVE,
    FORMAT_VERSION,
    SAVED,
    HistoryRecord,
    ProjectFile,
    ProjectSession,
    Snapshot,
    SnapshotCache,
    discard_recoverable,
    find_recoverable,
    snapshot_of,
)
from sa3_studio.document import (
    AudioData,
    History,
    Project,
    accept_take,
    add_region,
    add_take,
    apply_gain,
    new_take,
)
from sa3_studio.errors import ProjectFileError

REPO = Path(__file__).resolve().parents[3]
RATE = 44100


def audio(seconds: float, seed: int) -> AudioData:
    rng = np.random.default_rng(seed)
    return AudioData.from_array(0.3 * rng.standard_normal((2, round(seconds * RATE))))


def edit_chain() -> list[tuple[str, Project]]:
    """A short history: open, gain, region, a generated take, accept it."""
    p0 = Project.from_audio(audio(3.0, 1))
    p1 = apply_gain(p0, 0, RATE, -6.0)
    p2, region_id = add_region(p1, "track-1", RATE, 2 * RATE, prompt="drum fill")
    take = new_take(
        p2,
        region_id,
        audio(1.0, 2),
        prompt="drum fill",
        seed=7,
        model_name="tiny",
        weights_hash="abc",
    )
    p3 = add_take(p2, take)
    p4 = accept_take(p3, region_id, take.id)
    return [
        ("", p0),
        ("Gain 0:00–0:01", p1),
        ("Add region", p2),
        ("Generate", p3),
        ("Accept take 1", p4),
    ]


def record(entries: list[tuple[str, Project]], current: int, saved: int | None = None):
    return SnapshotCache().record(entries, current, saved)


def tiny_snapshot(version: int, frames: int = 100) -> Snapshot:
    rng = np.random.default_rng(version)
    samples = rng.standard_normal((2, frames)).astype(np.float32)
    return Snapshot(f"Edit {version}", {"version": version}, {f"a{version}": samples})


def rows(path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def open_and_load(path: Path, recovery: Path) -> None:
    with ProjectSession.open(path, recovery_dir=recovery) as session:
        session.load()


@pytest.fixture
def recovery(tmp_path: Path) -> Path:
    return tmp_path / "recovery"


# ------------------------------------------------------------------------------- round trips


def test_save_as_and_reopen_gives_back_every_snapshot_take_and_label(
    tmp_path: Path, recovery: Path
) -> None:
    entries = edit_chain()
    session = ProjectSession.new(recovery_dir=recovery)
    session.commit(record(entries, 4))
    path = tmp_path / "song.sa3proj"
    session.save_as(path, record(entries, 3))
    assert session.path == path
    assert session.title == "song"
    session.close()
    assert [p.name for p in recovery.glob("*")] == ["save-folders.txt"]  # recovery file gone

    with ProjectSession.open(path, recovery_dir=recovery) as reopened:
        state = reopened.load()
        assert state is not None
        assert reopened.recovered() is None
        assert state.history.current == 3
        assert state.history.saved == 3
        assert state.history.labels() == tuple(label for label, _ in entries[1:])
        projects = state.projects()
        for (label, original), (label2, loaded) in zip(entries, projects, strict=True):
            assert label == label2
            assert loaded == original
        # Snapshots share their buffers again after loading, as in memory.
        first = {a.content_id: a for a in projects[0][1].audio_buffers().values()}
        last = projects[-1][1].audio_buffers()
        shared = set(first) & set(last)
        assert shared
        assert all(first[c] is last[c] or first[c].samples is last[c].samples for c in shared)
        assert state.project() == entries[3][1]
        assert projects[3][1].takes[0].audio.samples.flags.writeable is False


def test_each_buffer_is_stored_once(tmp_path: Path, recovery: Path) -> None:
    entries = edit_chain()
    distinct: set[str] = set()
    for _, p in entries:
        distinct |= set(p.audio_buffers())
    path = tmp_path / "once.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record(entries, 4))
    session.close()
    ids = [r[0] for r in rows(path, "SELECT id FROM audio")]
    assert sorted(ids) == sorted(distinct)
    assert len(rows(path, "SELECT digest FROM manifest")) == len(entries)


def test_compressed_audio_round_trips_exactly_and_is_smaller(
    tmp_path: Path, recovery: Path
) -> None:
    t = np.arange(RATE * 4) / RATE
    tone = np.round(0.5 * np.sin(2 * np.pi * 220 * t) * 256) / 256  # few distinct values
    project = Project.from_audio(AudioData.from_array(np.stack([tone, tone])))
    sizes = {}
    for compress in (False, True):
        path = tmp_path / f"c{compress}.sa3proj"
        session = ProjectSession.new(recovery_dir=recovery, compress=compress)
        session.save_as(path, record([("", project)], 0))
        session.close()
        sizes[compress] = path.stat().st_size
        with ProjectFile.open(path) as file:
            state = file.read(SAVED)
            assert state is not None
            assert state.project() == project
        codecs = {r[0] for r in rows(path, "SELECT codec FROM audio_chunk")}
        assert codecs == ({"f32le-shuffle-zlib"} if compress else {"f32le"})
    assert sizes[True] < 0.5 * sizes[False]


def test_long_audio_is_split_into_chunks(
    tmp_path: Path, recovery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "CHUNK_BYTES", 10_000)
    project = Project.from_audio(audio(0.5, 3))
    path = tmp_path / "chunks.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record([("", project)], 0))
    session.close()
    chunks = rows(path, "SELECT COUNT(*) FROM audio_chunk")[0][0]
    assert chunks == -(-2 * round(0.5 * RATE) * 4 // 10_000)
    with ProjectSession.open(path, recovery_dir=recovery) as reopened:
        state = reopened.load()
        assert state is not None
        assert state.project() == project


def test_a_newer_manifest_inside_a_current_file_is_refused_not_misread(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.sa3proj"
    newer = {"format": "sa3-studio-project", "version": 99, "buffers": {}}
    with ProjectFile.create(path) as file:
        file.write(SAVED, HistoryRecord((Snapshot("", newer, {}),), 0))
    with ProjectFile.open(path) as file:
        state = file.read(SAVED)
        assert state is not None
        with pytest.raises(ProjectFileError) as err:
            state.projects()
    assert str(err.value) == (
        "This project was saved by a newer SA3 Studio (format 99); update SA3 Studio to open it."
    )


# ------------------------------------------------------------------------------- autosave


def test_autosave_writes_only_what_is_new_and_drops_what_nothing_uses(
    tmp_path: Path, recovery: Path
) -> None:
    path = tmp_path / "inc.sa3proj"
    with ProjectFile.create(path) as file:
        s1, s2, s3 = tiny_snapshot(1), tiny_snapshot(2), tiny_snapshot(3)
        file.write(AUTOSAVE, HistoryRecord((s1, s2), 1))
        file.write(AUTOSAVE, HistoryRecord((s1, s2, s3), 2))
    chunks = rows(path, "SELECT rowid, audio_id FROM audio_chunk ORDER BY rowid")
    # a1 and a2 were written once, by the first commit; the second added only a3.
    assert [c[1] for c in chunks] == ["a1", "a2", "a3"]
    with ProjectFile.open(path) as file:
        file.write(AUTOSAVE, HistoryRecord((s2, s3), 1))  # the oldest step fell off
        state = file.read(AUTOSAVE)
        assert state is not None
        assert [s.manifest["version"] for s in state.history.snapshots] == [2, 3]
    assert [r[0] for r in rows(path, "SELECT id FROM audio ORDER BY id")] == ["a2", "a3"]
    assert rows(path, "SELECT COUNT(*) FROM audio_chunk")[0][0] == 2
    assert rows(path, "SELECT COUNT(*) FROM manifest")[0][0] == 2


def test_snapshot_cache_serialises_only_new_projects(recovery: Path) -> None:
    entries = edit_chain()
    cache = SnapshotCache()
    first = cache.record(entries[:3], 2)
    second = cache.record(entries, 4)
    assert all(a is b for a, b in zip(first.snapshots, second.snapshots[:3], strict=False))
    assert second.snapshots[3] is not first.snapshots[2]


def test_a_commit_is_in_the_file_when_commit_returns(tmp_path: Path, recovery: Path) -> None:
    entries = edit_chain()
    session = ProjectSession.new(recovery_dir=recovery)
    session.commit(record(entries, 2))
    # Read the file from another process while this one still holds it: the lock refuses, so
    # copy the database and its write-ahead log as they are on disk right now, as a crash would
    # leave them, and open the copy there.
    copy = tmp_path / "copy.sa3proj"
    copy.write_bytes(session.file.path.read_bytes())
    wal = Path(f"{session.file.path}-wal")
    if wal.exists():
        Path(f"{copy}-wal").write_bytes(wal.read_bytes())
    code = (
        "import sys; from sa3_studio.audio.store import ProjectFile, AUTOSAVE\n"
        "f = ProjectFile.open(sys.argv[1]); s = f.read(AUTOSAVE)\n"
        "print(s.history.current, len(s.history.snapshots), s.history.current_snapshot.label)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code, str(copy)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(maxsplit=2) == ["2", "5", "Add region\n"]
    session.close(discard_unsaved=True)


def test_commit_from_a_worker_thread(tmp_path: Path, recovery: Path) -> None:
    entries = edit_chain()
    session = ProjectSession.new(recovery_dir=recovery)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            session.commit(record(entries, 1))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=work, name="autosave-test")
    worker.start()
    worker.join()
    assert not errors
    state = session.recovered()
    assert state is not None
    assert state.history.current == 1
    session.close(discard_unsaved=True)


# ------------------------------------------------------------------------------- save


def test_save_writes_the_saved_state_and_clears_the_autosave(
    tmp_path: Path, recovery: Path
) -> None:
    entries = edit_chain()
    path = tmp_path / "s.sa3proj"
    first = ProjectSession.new(recovery_dir=recovery)
    first.save_as(path, record(entries[:1], 0))
    first.close()
    session = ProjectSession.open(path, recovery_dir=recovery)
    session.commit(record(entries[:3], 2))
    assert len(list(recovery.glob("*.sa3ptr.json"))) == 1
    session.save(record(entries[:3], 2))
    assert session.recovered() is None
    assert not list(recovery.glob("*.sa3ptr.json"))
    state = session.load()
    assert state is not None
    assert state.history.current == 2
    assert state.history.saved == 2
    session.close()
    with ProjectFile.open(path) as file:
        assert file.integrity_check() == "ok"
        assert file.slot_info(AUTOSAVE) is None


def test_an_autosave_of_the_saved_state_leaves_nothing_to_recover(
    tmp_path: Path, recovery: Path
) -> None:
    entries = edit_chain()
    path = tmp_path / "q.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record(entries[:3], 2))
    session.commit(record(entries[:3], 2))  # queued behind the save that wrote this state
    assert session.recovered() is None
    assert not list(recovery.glob("*.sa3ptr.json"))
    session.commit(record(entries[:4], 3))  # a newer state is autosaved as usual
    state = session.recovered()
    assert state is not None
    assert state.history.current == 3
    session.close()
    assert [r.project_path for r in find_recoverable(recovery)] == [path]


def test_an_untitled_session_primes_its_file_with_the_opened_audio(recovery: Path) -> None:
    entries = edit_chain()
    session = ProjectSession.new(recovery_dir=recovery)
    session.prime(record(entries[:1], 0))
    base = session.file.read(store.BASE)
    assert base is not None
    assert set(base.history.current_snapshot.audio) == set(snapshot_of(entries[0][1]).audio)
    assert find_recoverable(recovery) == []  # a base alone is nothing to recover
    session.close()
    assert list(recovery.glob("*.sa3proj")) == []  # and leaves no file behind


def test_saving_an_untitled_project_asks_for_save_as(recovery: Path) -> None:
    session = ProjectSession.new(recovery_dir=recovery)
    with pytest.raises(ProjectFileError, match="Save As"):
        session.save(record(edit_chain()[:1], 0))
    session.close()


def test_save_as_refuses_a_file_open_in_another_window(tmp_path: Path, recovery: Path) -> None:
    entries = edit_chain()
    target = tmp_path / "busy.sa3proj"
    other = ProjectSession.new(recovery_dir=recovery)
    other.save_as(target, record(entries[:1], 0))  # "another window" holds it
    session = ProjectSession.new(recovery_dir=recovery)
    with pytest.raises(ProjectFileError, match="open in another SA3 Studio window"):
        session.save_as(target, record(entries, 4))
    other.close()
    session.save_as(target, record(entries, 4))  # now it may be replaced
    state = session.load()
    assert state is not None
    assert state.history.current == 4
    session.close()


def test_save_as_from_a_saved_project_leaves_the_old_file_saved(
    tmp_path: Path, recovery: Path
) -> None:
    entries = edit_chain()
    old, new = tmp_path / "old.sa3proj", tmp_path / "new.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(old, record(entries[:2], 1))
    session.commit(record(entries, 4))
    session.save_as(new, record(entries, 4))
    session.save_as(new, record(entries, 3))  # the same file again: a plain save
    session.close()
    with ProjectFile.open(old) as file:
        saved = file.read(SAVED)
        assert saved is not None
        assert saved.history.current == 1
        assert file.read(AUTOSAVE) is None  # the newer work moved to the new file
    with ProjectFile.open(new) as file:
        saved = file.read(SAVED)
        assert saved is not None
        assert saved.history.current == 3
    assert not list(tmp_path.glob(".*.tmp*"))
    assert find_recoverable(recovery) == []


def test_stale_temporary_files_of_an_interrupted_save_as_are_removed(
    tmp_path: Path, recovery: Path
) -> None:
    target = tmp_path / "t.sa3proj"
    stale = tmp_path / ".t.sa3proj.abc123.tmp"
    fresh = tmp_path / ".t.sa3proj.def456.tmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    old = time.time() - 2 * store.STALE_TEMP_S
    os.utime(stale, (old, old))
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(target, record(edit_chain()[:1], 0))
    session.close()
    assert not stale.exists()
    assert fresh.exists()  # it may belong to a Save As still running


# ------------------------------------------------------------------------------- recovery


def crash(session: ProjectSession) -> None:
    """What a killed process leaves: the file as written, the lock released, nothing tidied."""
    session.file.close()


def test_untitled_work_is_found_after_a_crash_and_can_be_resumed(recovery: Path) -> None:
    entries = edit_chain()
    session = ProjectSession.new(recovery_dir=recovery, title="My idea")
    session.commit(record(entries, 4))
    assert find_recoverable(recovery) == []  # in use by a running session: not offered
    crash(session)

    (item,) = find_recoverable(recovery)
    assert item.untitled
    assert item.title == "My idea"
    assert item.label == "Accept take 1"
    assert item.steps == 5
    assert time.time() - item.written_at < 60

    resumed = ProjectSession.resume(item, recovery_dir=recovery)
    assert resumed.untitled
    state = resumed.recovered()
    assert state is not None
    assert [p for _, p in state.projects()] == [p for _, p in entries]
    resumed.close()  # not discarded: still offered
    assert len(find_recoverable(recovery)) == 1
    discard_recoverable(find_recoverable(recovery)[0])
    assert find_recoverable(recovery) == []
    assert not list(recovery.glob("*.sa3proj*"))


def test_unsaved_work_on_a_saved_project_is_found_and_recovered(
    tmp_path: Path, recovery: Path
) -> None:
    entries = edit_chain()
    path = tmp_path / "p.sa3proj"
    first = ProjectSession.new(recovery_dir=recovery)
    first.save_as(path, record(entries[:2], 1))
    first.close()
    session = ProjectSession.open(path, recovery_dir=recovery)
    session.commit(record(entries, 4))
    crash(session)

    (item,) = find_recoverable(recovery)
    assert item.project_path == path
    assert item.file == path
    assert item.title == "p"
    reopened = ProjectSession.resume(item, recovery_dir=recovery)
    saved, newer = reopened.load(), reopened.recovered()
    assert saved is not None
    assert newer is not None
    assert saved.history.current == 1
    assert newer.project() == entries[4][1]
    reopened.discard_recovered()
    assert reopened.recovered() is None
    reopened.close()
    assert find_recoverable(recovery) == []


def test_close_keeps_or_discards_unsaved_work_as_told(tmp_path: Path, recovery: Path) -> None:
    entries = edit_chain()
    kept = ProjectSession.new(recovery_dir=recovery)
    kept.commit(record(entries, 1))
    kept.close()
    assert len(find_recoverable(recovery)) == 1
    discard_recoverable(find_recoverable(recovery)[0])

    dropped = ProjectSession.new(recovery_dir=recovery)
    dropped.commit(record(entries, 1))
    dropped.close(discard_unsaved=True)
    empty = ProjectSession.new(recovery_dir=recovery)
    empty.close()
    assert find_recoverable(recovery) == []
    assert not list(recovery.iterdir())


def test_leftovers_with_nothing_to_recover_are_tidied(tmp_path: Path, recovery: Path) -> None:
    path = tmp_path / "gone.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record(edit_chain()[:1], 0))
    session.commit(record(edit_chain()[:1], 0))
    crash(session)
    path.unlink()
    Path(f"{path}-wal").unlink(missing_ok=True)
    untitled = ProjectSession.new(recovery_dir=recovery)
    crash(untitled)  # died before its first commit
    assert find_recoverable(recovery) == []
    # Only the list of folders Save As wrote into (for cleaning their leftovers) stays.
    assert [p.name for p in recovery.iterdir()] == ["save-folders.txt"]


# ------------------------------------------------------------------------------- bad files


def test_random_bytes_are_not_a_project(tmp_path: Path) -> None:
    path = tmp_path / "noise.sa3proj"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(ProjectFileError, match=r"noise\.sa3proj is not an SA3 Studio project"):
        ProjectFile.open(path)


def test_an_empty_file_is_not_a_project(tmp_path: Path) -> None:
    path = tmp_path / "empty.sa3proj"
    path.write_bytes(b"")
    with pytest.raises(ProjectFileError, match="is not an SA3 Studio project"):
        ProjectFile.open(path)


def test_a_foreign_sqlite_database_is_not_a_project(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(ProjectFileError) as err:
        ProjectFile.open(path)
    assert str(err.value) == (
        "other.db is a database, but not an SA3 Studio project; open a .sa3proj file saved by "
        "SA3 Studio."
    )


def test_a_project_from_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sa3proj"
    ProjectFile.create(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={FORMAT_VERSION + 1}")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(ProjectFileError) as err:
        ProjectFile.open(path)
    assert str(err.value) == (
        f"This project was saved by a newer SA3 Studio (format {FORMAT_VERSION + 1}); "
        "update SA3 Studio to open it."
    )
    assert path.read_bytes() == before  # refused without touching it


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1, 0.002, 0.00005])
def test_a_truncated_project_is_reported_damaged(
    tmp_path: Path, recovery: Path, keep: float
) -> None:
    path = tmp_path / "cut.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record(edit_chain(), 4))
    session.close()
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ProjectFileError) as err:
        open_and_load(path, recovery)
    assert "cut.sa3proj is damaged (" in str(err.value)
    assert str(err.value).endswith("; open a backup copy instead.")


def test_damaged_audio_is_caught_by_its_checksum(tmp_path: Path, recovery: Path) -> None:
    path = tmp_path / "flip.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery, compress=False)  # raw: only the CRC
    session.save_as(path, record(edit_chain()[:1], 0))
    session.close()
    con = sqlite3.connect(path)
    (blob,) = con.execute("SELECT data FROM audio_chunk LIMIT 1").fetchone()
    flipped = bytearray(blob)
    flipped[1234] ^= 0x40
    con.execute("UPDATE audio_chunk SET data = ? WHERE rowid = 1", (bytes(flipped),))
    con.commit()
    con.close()
    with (
        ProjectSession.open(path, recovery_dir=recovery) as s,
        pytest.raises(ProjectFileError, match="does not match its checksum"),
    ):
        s.load()


def test_missing_files_and_folders_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ProjectFileError, match="does not exist"):
        ProjectFile.open(tmp_path / "nope.sa3proj")
    with pytest.raises(ProjectFileError, match="is a folder"):
        ProjectFile.open(tmp_path)
    ProjectFile.create(tmp_path / "x.sa3proj").close()
    with pytest.raises(ProjectFileError, match="already exists"):
        ProjectFile.create(tmp_path / "x.sa3proj")


# ------------------------------------------------------------------------------- locking


def test_a_project_open_in_this_process_cannot_be_opened_twice(tmp_path: Path) -> None:
    path = tmp_path / "twice.sa3proj"
    with ProjectFile.create(path), pytest.raises(ProjectFileError) as err:
        ProjectFile.open(path)
    assert "already open in another SA3 Studio window" in str(err.value)
    ProjectFile.open(path).close()  # free again once closed


def test_a_project_open_in_another_process_gives_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "shared.sa3proj"
    ProjectFile.create(path).close()
    code = (
        "import sys; from sa3_studio.audio.store import ProjectFile\n"
        "f = ProjectFile.open(sys.argv[1]); print('open', flush=True); sys.stdin.read()"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(ProjectFileError) as err:
            ProjectSession.open(path, recovery_dir=tmp_path / "r")
        assert str(err.value) == (
            "shared.sa3proj is already open in another SA3 Studio window; switch to that "
            "window, or close the project there and try again."
        )
    finally:
        holder.communicate("", timeout=30)
    ProjectFile.open(path).close()  # the holder exited: the lock went with it


def test_using_a_closed_file_is_a_clear_error(tmp_path: Path) -> None:
    file = ProjectFile.create(tmp_path / "c.sa3proj")
    file.close()
    file.close()
    with pytest.raises(ProjectFileError, match="already closed"):
        file.read(SAVED)


def test_snapshot_of_records_the_audio_the_manifest_uses() -> None:
    _, project = edit_chain()[-1]
    snap = snapshot_of(project, "x")
    assert set(snap.audio) == set(snap.manifest["buffers"])
    assert snap.digest == snapshot_of(project, "y").digest  # the label is not the document


def test_the_recovery_folder_follows_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(store.DATA_DIR_ENV, str(tmp_path / "data"))
    assert store.default_recovery_dir() == tmp_path / "data" / "recovery"
    session = ProjectSession.new()
    session.commit(record(edit_chain()[:1], 0))
    session.file.close()  # a crash
    (item,) = find_recoverable()
    assert item.file.parent == tmp_path / "data" / "recovery"
    discard_recoverable(item)


def test_the_document_history_round_trips_with_undo_redo_and_the_saved_point(
    tmp_path: Path, recovery: Path
) -> None:
    entries = edit_chain()
    history = History(entries[0][1])
    for label, project in entries[1:]:
        history.push(project, label)
    history.undo()  # the user stepped back once: "Accept take 1" is redoable
    path = tmp_path / "h.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.commit(history)
    session.save_as(path, history)
    history.mark_saved()
    history.push(apply_gain(history.project, 0, 100, 1.0), "Gain 0:00–0:00")  # after the save
    session.commit(history)
    crash(session)

    (item,) = find_recoverable(recovery)
    reopened = ProjectSession.resume(item, recovery_dir=recovery)
    saved, newer = reopened.load(), reopened.recovered()
    assert saved is not None
    assert newer is not None
    restored_saved = saved.to_history()
    assert restored_saved.project == entries[3][1]
    assert restored_saved.redo_label == "Redo Accept take 1"
    assert not restored_saved.is_dirty
    restored = newer.to_history()
    assert restored.project == history.project
    assert restored.labels() == history.labels()
    assert restored.is_dirty
    assert restored.undo() == entries[3][1]
    assert not restored.is_dirty  # back at the saved point
    reopened.close(discard_unsaved=True)


def _saved_project(tmp_path: Path, recovery: Path, name: str = "p.sa3proj") -> Path:
    path = tmp_path / name
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record(edit_chain()[:1], 0))
    session.close()
    return path


def test_a_deeply_nested_manifest_is_damaged_not_an_internal_error(
    tmp_path: Path, recovery: Path
) -> None:
    path = _saved_project(tmp_path, recovery)
    con = sqlite3.connect(str(path))
    con.execute("UPDATE manifest SET json = ?", ("[" * 200_000 + "]" * 200_000,))
    con.commit()
    con.close()
    with ProjectFile.open(path) as f, pytest.raises(ProjectFileError, match="damaged"):
        f.read(SAVED)


def test_a_stray_log_of_another_file_does_not_damage_an_intact_project(
    tmp_path: Path, recovery: Path
) -> None:
    path = _saved_project(tmp_path, recovery)
    other = tmp_path / "other.db"
    con = sqlite3.connect(str(other))
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (randomblob(100000))")
    con.commit()
    (tmp_path / "p.sa3proj-wal").write_bytes((tmp_path / "other.db-wal").read_bytes())
    con.close()
    session = ProjectSession.open(path, recovery_dir=recovery)
    try:
        state = session.load()
        assert state is not None
        assert state.project().frames == edit_chain()[0][1].frames
    finally:
        session.close()
    [aside] = tmp_path.glob("p.sa3proj-wal.stray-*")  # kept, not deleted
    assert aside.stat().st_size > 0
    with ProjectFile.open(path) as f:
        assert f.integrity_check() == "ok"


def test_a_read_only_project_is_read_with_sqlites_read_only_mode(
    tmp_path: Path, recovery: Path
) -> None:
    path = _saved_project(tmp_path, recovery)
    before = path.read_bytes()
    with ProjectFile.open_read_only(path) as f:
        assert f.read_only
        assert f.read(SAVED) is not None
        with pytest.raises(ProjectFileError, match="read-only; use Save As"):
            f.clear(AUTOSAVE)
    state = store.read_saved_read_only(path)
    assert state.history.current == 0
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.sa3proj", "recovery"]


def test_a_save_keeps_an_autosave_that_is_newer_than_what_it_saves(
    tmp_path: Path, recovery: Path
) -> None:
    entries = edit_chain()
    path = _saved_project(tmp_path, recovery, "n.sa3proj")
    session = ProjectSession.open(path, recovery_dir=recovery)
    session.commit(record(entries[:4], 3))  # an edit made while the save below was on its way
    session.save(record(entries[:3], 2))
    newer = session.recovered()
    assert newer is not None
    assert newer.history.current == 3
    assert len(list(recovery.glob("*.sa3ptr.json"))) == 1  # still found after a crash
    session.save(record(entries[:4], 3))  # saving that state clears it
    assert session.recovered() is None
    session.close()


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_leftovers_of_killed_saves_and_creations_are_cleaned_on_the_next_start(
    tmp_path: Path, recovery: Path
) -> None:
    folder = tmp_path / "projects"
    path = _saved_project(folder, recovery, "song.sa3proj") if folder.mkdir() is None else None
    assert path is not None
    dead, alive = _dead_pid(), os.getpid()
    ours_dead = [
        folder / f".song.sa3proj.{dead}-k2j3.tmp",
        folder / f".song.sa3proj.{dead}-k2j3.tmp-wal",
        recovery / f".untitled-20260101-000000-abcd1234.sa3proj.{dead}-x9.tmp",
    ]
    in_use = folder / f".song.sa3proj.{alive}-zz.tmp"
    not_ours = [folder / ".song.sa3proj.notes.txt", folder / ".hidden.tmp", folder / "a.tmp"]
    for p in [*ours_dead, in_use, *not_ours]:
        p.write_bytes(b"SQLite format 3\x00" + bytes(200))
    removed = store.clean_leftovers(recovery)
    assert sorted(removed) == sorted(ours_dead)
    assert all(not p.exists() for p in ours_dead)
    assert in_use.exists()
    assert all(p.exists() for p in not_ours)
    assert path.exists()
    assert find_recoverable(recovery) == []  # runs the clean-up at start as well


def _imported(tmp_path: Path, subtype: str, seconds: float = 3.0) -> AudioData:
    import soundfile as sf

    from sa3_studio.audio.files import import_audio

    t = np.arange(round(seconds * RATE)) / RATE
    rng = np.random.default_rng(4)
    music = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    path = tmp_path / f"source-{subtype}.wav"
    sf.write(str(path), np.stack([music, np.roll(music, 100)], axis=1), RATE, subtype=subtype)
    samples, _info = import_audio(path, sample_rate=RATE)
    return AudioData.from_array(samples, copy=False)


@pytest.mark.parametrize(("subtype", "codec"), [("PCM_16", "pcm16-flac"), ("PCM_24", "pcm24-flac")])
def test_sources_are_stored_as_flac_at_their_bit_depth_and_come_back_bit_exact(
    tmp_path: Path, recovery: Path, subtype: str, codec: str
) -> None:
    source = _imported(tmp_path, subtype)
    project = Project.from_audio(source)
    path = tmp_path / "flac.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record([("", project)], 0))
    session.close()
    assert {r[0] for r in rows(path, "SELECT codec FROM audio_chunk")} == {codec}
    stored = sum(r[0] for r in rows(path, "SELECT length(data) FROM audio_chunk"))
    bits = 16 if codec == "pcm16-flac" else 24
    assert stored < source.nbytes * bits / 32  # smaller than the PCM it came from
    with ProjectFile.open(path) as file:
        state = file.read(SAVED)
    assert state is not None
    back = state.history.current_snapshot.audio[source.content_id]
    assert back.view(np.uint32).tobytes() == source.samples.view(np.uint32).tobytes()


def test_takes_are_float32_compressed_and_exact(tmp_path: Path, recovery: Path) -> None:
    take = AudioData.from_array(0.2 * np.random.default_rng(8).standard_normal((2, RATE)))
    project = Project.from_audio(take)
    path = tmp_path / "take.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record([("", project)], 0))
    session.close()
    assert {r[0] for r in rows(path, "SELECT codec FROM audio_chunk")} == {"f32le-shuffle-zlib"}
    with ProjectFile.open(path) as file:
        state = file.read(SAVED)
    assert state is not None
    assert state.project() == project


def test_projects_with_raw_audio_still_open(tmp_path: Path, recovery: Path) -> None:
    project = edit_chain()[0][1]
    path = tmp_path / "old.sa3proj"
    old = ProjectSession.new(recovery_dir=recovery, compress=False)
    old.save_as(path, record([("", project)], 0))
    old.close()
    assert {r[0] for r in rows(path, "SELECT codec FROM audio_chunk")} == {"f32le"}
    with ProjectSession.open(path, recovery_dir=recovery) as session:
        state = session.load()
        assert state is not None
        assert state.project() == project


def test_reopening_holds_the_audio_once(tmp_path: Path, recovery: Path) -> None:
    import tracemalloc

    source = _imported(tmp_path, "PCM_16", seconds=20.0)
    path = tmp_path / "once.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record([("", Project.from_audio(source))], 0))
    session.close()
    with ProjectSession.open(path, recovery_dir=recovery) as reopened:
        tracemalloc.start()
        try:
            state = reopened.load()
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert state is not None
    # The samples once, plus a chunk or two being decoded (4 MiB each).
    assert peak < source.nbytes + 4 * store.CHUNK_BYTES


def test_a_buffer_claiming_more_than_the_file_holds_is_damaged(
    tmp_path: Path, recovery: Path
) -> None:
    path = tmp_path / "claims.sa3proj"
    session = ProjectSession.new(recovery_dir=recovery)
    session.save_as(path, record(edit_chain()[:1], 0))
    session.close()
    con = sqlite3.connect(str(path))
    frames = 1 << 34
    con.execute("UPDATE audio SET frames = ?, nbytes = ?", (frames, 2 * frames * 4))
    con.commit()
    con.close()
    with (
        ProjectSession.open(path, recovery_dir=recovery) as s,
        pytest.raises(ProjectFileError, match="claims more samples than the file holds"),
    ):
        s.load()
