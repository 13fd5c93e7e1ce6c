"""The project file: one SQLite database holding the document, its audio and its undo history.

Like Audacity's ``.aup3``, a project is a single file. Inside it:

- ``audio`` / ``audio_chunk``: every audio buffer once, under its content id, as little-endian
  float32 ``(channels, frames)`` in chunks of a few MiB, with a CRC-32 to catch damage. A chunk
  whose samples are exact 16- or 24-bit values (a decoded file, not edited since) is stored as
  FLAC at that depth (lossless, bit-exact); other audio (edits, takes) as byte-shuffled,
  zlib-compressed float32; files written without compression (and older ones) hold raw
  float32. Reading fills one array chunk by chunk, so a buffer is never held twice;
- ``manifest`` / ``manifest_audio``: each distinct document manifest (JSON from
  :func:`~sa3_studio.document.serialize.project_to_manifest`) once, under a hash of its text,
  and the content ids it uses;
- ``history`` / ``slot``: two *slots*, each an undo history (the manifests in order, their undo
  labels, the current position and the saved point). ``saved`` is what the user last saved;
  ``autosave`` is newer work, written after every committed edit and finished generation, and
  cleared by a save. An autosave slot left behind by a crash is what recovery offers.

Durability. The database runs in WAL mode with ``synchronous=FULL``: every write is one
transaction that is on disk (fsynced) when the call returns, so a committed edit survives a
killed process, an OS crash and a power cut. ``NORMAL`` would survive a killed process too but
may lose the last transactions on power loss; edits arrive at human speed, so the extra fsync per
commit costs nothing noticeable. A killed writer leaves either the old or the new state, never a
mix. Save As builds the new file under a temporary name and renames it into place.

Locking. An open project holds an exclusive SQLite lock (``locking_mode=EXCLUSIVE``) until it
is closed; the operating system releases it when the process dies, so a crash never leaves a
stale lock. Another instance trying to open the same file gets a clear message.

Recovery. Work on a project that was never saved autosaves into a file of its own in the
recovery folder (under the user's data folder; configurable, for tests). Work on a saved project
autosaves into that project's autosave slot, and a small pointer file in the recovery folder
names the project. :func:`find_recoverable` lists what a crashed session left behind.

Layers: :class:`ProjectFile` is the container (manifests and arrays, no document types);
:class:`ProjectSession` is what the application uses (new / open / commit / save / save as /
recover / close); the helpers at the end convert :mod:`sa3_studio.document` projects and
histories to and from the container's records.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt
import soundfile as sf

from sa3_studio.document.audio_data import AudioData
from sa3_studio.document.constants import MAX_FRAMES
from sa3_studio.document.history import DEFAULT_MEMORY_LIMIT, History
from sa3_studio.document.project import Project
from sa3_studio.document.serialize import project_from_manifest, project_to_manifest
from sa3_studio.errors import ProjectFileError

_log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the file layout written by this build (SQLite ``user_version``)."""

APPLICATION_ID = 0x53413350  # "SA3P"
"""SQLite ``application_id`` that marks a file as an SA3 Studio project."""

PROJECT_SUFFIX = ".sa3proj"
"""File name extension of projects."""

SAVED = "saved"
"""Slot holding what the user last saved."""

AUTOSAVE = "autosave"
"""Slot holding work newer than the last save (cleared by a save)."""

BASE = "base"
"""Slot of an untitled session holding the state it was opened in (written in the background
right after opening, so the audio is in the file before the first edit and an edit's autosave
writes only what the edit changed). Never offered for recovery on its own."""

CHUNK_BYTES = 4 * 1024 * 1024
"""Raw bytes of audio per stored chunk (keeps every SQLite value far below its size limit)."""

_CODEC_RAW = "f32le"
_CODEC_ZLIB = "f32le-shuffle-zlib"
# Float samples that are exact 16- or 24-bit values (a decoded file not edited since), stored as
# mono FLAC of those integers: lossless, and they come back bit for bit.
_CODEC_FLAC16 = "pcm16-flac"
_CODEC_FLAC24 = "pcm24-flac"
_FLAC_RATE = 44100  # FLAC needs a rate in its header; a chunk is just a run of samples
_BUSY_TIMEOUT_S = 0.25
_POINTER_SUFFIX = ".sa3ptr.json"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_TABLES = frozenset(
    {"meta", "audio", "audio_chunk", "manifest", "manifest_audio", "slot", "history"}
)

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE audio (
    id TEXT PRIMARY KEY,
    channels INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    crc32 INTEGER NOT NULL
);
CREATE TABLE audio_chunk (
    audio_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    codec TEXT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (audio_id, seq)
);
CREATE TABLE manifest (digest TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE manifest_audio (
    digest TEXT NOT NULL,
    audio_id TEXT NOT NULL,
    PRIMARY KEY (digest, audio_id)
) WITHOUT ROWID;
CREATE INDEX manifest_audio_by_audio ON manifest_audio (audio_id);
CREATE TABLE slot (
    name TEXT PRIMARY KEY,
    current INTEGER NOT NULL,
    saved INTEGER,
    revision INTEGER NOT NULL,
    written_at REAL NOT NULL
);
CREATE TABLE history (
    slot TEXT NOT NULL,
    pos INTEGER NOT NULL,
    digest TEXT NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY (slot, pos)
) WITHOUT ROWID;
"""

FloatArray: TypeAlias = npt.NDArray[np.float32]


# --------------------------------------------------------------------------------------------
# Records (what the container stores; no document types)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One state of the document in the undo history.

    Attributes:
        label: what the edit that led here did ("Gain 0:01–0:02"); "" for the first state.
        manifest: the JSON-safe document, audio referred to by content id.
        audio: content id -> float32 ``(channels, frames)`` samples for every id the manifest
            uses (only those not yet in the file are read).
    """

    label: str
    manifest: Mapping[str, Any] = field(repr=False)
    audio: Mapping[str, FloatArray] = field(repr=False)

    @cached_property
    def text(self) -> str:
        """The manifest as canonical JSON (sorted keys, no spaces)."""
        return json.dumps(
            self.manifest,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )

    @cached_property
    def digest(self) -> str:
        """Hash of :attr:`text`: equal manifests are stored once."""
        return hashlib.blake2b(self.text.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class HistoryRecord:
    """An undo history as the store keeps it.

    Attributes:
        snapshots: oldest first; never empty.
        current: index of the state the user sees.
        saved: index of the state last saved, or None (never saved, or not any more in the
            history).
    """

    snapshots: tuple[Snapshot, ...]
    current: int
    saved: int | None = None

    def __post_init__(self) -> None:
        if not self.snapshots:
            raise ValueError("a history needs at least one snapshot")
        if not 0 <= self.current < len(self.snapshots):
            raise ValueError(f"current index {self.current} is outside the history")
        if self.saved is not None and not 0 <= self.saved < len(self.snapshots):
            raise ValueError(f"saved index {self.saved} is outside the history")

    @property
    def current_snapshot(self) -> Snapshot:
        """The state the user sees."""
        return self.snapshots[self.current]

    def labels(self) -> tuple[str, ...]:
        """Undo labels of every step (the first snapshot has none)."""
        return tuple(s.label for s in self.snapshots[1:])


@dataclass(frozen=True)
class StoredState:
    """A slot read back from a project file.

    Attributes:
        slot: :data:`SAVED` or :data:`AUTOSAVE`.
        history: the undo history, snapshots carrying the audio read from the file.
        revision: how many times this slot has been written.
        written_at: when it was last written (seconds since the epoch).
    """

    slot: str
    history: HistoryRecord
    revision: int
    written_at: float

    def projects(self) -> list[tuple[str, Project]]:
        """Rebuild every snapshot as a :class:`~sa3_studio.document.project.Project`.

        Snapshots share :class:`~sa3_studio.document.audio_data.AudioData` objects, as they do
        in memory.

        Returns:
            ``(label, project)`` pairs, oldest first.

        Raises:
            ProjectFileError: a manifest is from a newer version or damaged.
        """
        cache: dict[str, AudioData] = {}
        return [(s.label, _project_of(s, cache)) for s in self.history.snapshots]

    def project(self) -> Project:
        """The current snapshot as a project (see :meth:`projects`)."""
        return _project_of(self.history.current_snapshot, {})

    def to_history(
        self, *, memory_limit: int = DEFAULT_MEMORY_LIMIT, max_steps: int | None = None
    ) -> History:
        """Rebuild the document's undo history: undo and redo work as before the project closed.

        Args:
            memory_limit: see :class:`~sa3_studio.document.history.History`.
            max_steps: see :class:`~sa3_studio.document.history.History`.

        Raises:
            ProjectFileError: a manifest is from a newer version or damaged.
        """
        return History.restore(
            self.projects(),
            self.history.current,
            self.history.saved,
            memory_limit=memory_limit,
            max_steps=max_steps,
        )


@dataclass(frozen=True)
class SlotInfo:
    """What a slot holds, without reading its audio.

    Attributes:
        revision: how many times the slot has been written.
        written_at: when it was last written (seconds since the epoch).
        steps: number of snapshots in its history.
        label: undo label of its current state ("" for the first state).
    """

    revision: int
    written_at: float
    steps: int
    label: str


# --------------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------------


class ProjectFile:
    """An open project file, locked against other processes until :meth:`close`.

    Thread-safe: calls are serialised, so autosaves may run on a worker thread.
    """

    def __init__(
        self, path: Path, con: sqlite3.Connection, *, compress: bool, read_only: bool = False
    ) -> None:
        """Use :meth:`create`, :meth:`open` or :meth:`open_read_only`."""
        self.path = path
        self.compress = compress
        self.read_only = read_only
        self._created: list[Path] = []  # side files a read-only open made (removed on close)
        self._con: sqlite3.Connection | None = con
        self._lock = threading.RLock()
        self._manifests: set[str] = set()
        self._audio: set[str] = set()
        self._reload_ids()

    # ---------------------------------------------------------------- opening

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], *, title: str = "", compress: bool = False
    ) -> ProjectFile:
        """Create a new, empty project file and open it.

        The file appears complete or not at all (it is built under a temporary name).

        Args:
            path: where to create it; must not exist.
            title: a display title kept in the file (used for untitled recovery files).
            compress: store new audio compressed (smaller, slower to write).

        Raises:
            ProjectFileError: it exists already, or cannot be written.
        """
        target = Path(path)
        if target.exists():
            raise ProjectFileError(
                f"{target.name} already exists; choose another name or delete it first."
            )
        tmp = _build_empty(target, title)
        try:
            _publish_file(tmp, target, replace=False)
        finally:
            tmp.unlink(missing_ok=True)
        return cls.open(target, compress=compress)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, compress: bool = False) -> ProjectFile:
        """Open and lock an existing project file.

        Args:
            path: the project.
            compress: store audio added from now on compressed.

        Raises:
            ProjectFileError: it does not exist, is not a project, is damaged, was saved by a
                newer SA3 Studio, or is open in another SA3 Studio.
        """
        target = Path(path)
        con = _open_minding_stray_wal(target)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA journal_size_limit=67108864")
            # Take the write lock now: in EXCLUSIVE locking mode it is held until close.
            con.execute("BEGIN EXCLUSIVE")
            con.execute("COMMIT")
            return cls(target, con, compress=compress)
        except sqlite3.Error as exc:
            con.close()
            raise _translate(exc, target) from exc

    @classmethod
    def open_read_only(cls, path: str | os.PathLike[str]) -> ProjectFile:
        """Open a project this user cannot write, with SQLite's read-only mode (``mode=ro``;
        ``immutable`` too when its folder is read-only, where SQLite cannot create the files
        readers share). Writing raises :class:`ProjectFileError`.

        Raises:
            ProjectFileError: as :meth:`open`.
        """
        target = Path(path)
        folder_writable = os.access(target.parent, os.W_OK)
        side = [p for p in (Path(f"{target}-wal"), Path(f"{target}-shm")) if not p.exists()]
        con = _open_checked(target, read_only=True, immutable=not folder_writable)
        try:
            file = cls(target, con, compress=False, read_only=True)
        except BaseException:
            con.close()
            raise
        file._created = side
        return file

    # ---------------------------------------------------------------- reading

    def slot_info(self, slot: str) -> SlotInfo | None:
        """What ``slot`` holds, or None when it is empty."""
        with self._transaction(write=False) as con:
            row = con.execute(
                "SELECT current, revision, written_at FROM slot WHERE name = ?", (slot,)
            ).fetchone()
            if row is None:
                return None
            steps = con.execute("SELECT COUNT(*) FROM history WHERE slot = ?", (slot,)).fetchone()
            label = con.execute(
                "SELECT label FROM history WHERE slot = ? AND pos = ?", (slot, row[0])
            ).fetchone()
        return SlotInfo(
            int(row[1]), float(row[2]), int(steps[0]), "" if label is None else label[0]
        )

    def current_digest(self, slot: str) -> str | None:
        """Manifest digest of ``slot``'s current state, or None when it is empty."""
        with self._transaction(write=False) as con:
            row = con.execute(
                "SELECT h.digest FROM slot s JOIN history h ON h.slot = s.name AND "
                "h.pos = s.current WHERE s.name = ?",
                (slot,),
            ).fetchone()
        return None if row is None else str(row[0])

    def has(self, slot: str) -> bool:
        """True when ``slot`` holds a history."""
        return self.slot_info(slot) is not None

    def read(self, slot: str) -> StoredState | None:
        """Read a slot with all its manifests and audio, checking every buffer's CRC.

        Returns:
            The slot, or None when it is empty.

        Raises:
            ProjectFileError: the file is damaged.
        """
        with self._transaction(write=False) as con:
            row = con.execute(
                "SELECT current, saved, revision, written_at FROM slot WHERE name = ?", (slot,)
            ).fetchone()
            if row is None:
                return None
            current, saved, revision, written_at = row
            steps = con.execute(
                "SELECT pos, digest, label FROM history WHERE slot = ? ORDER BY pos", (slot,)
            ).fetchall()
            if not steps or [s[0] for s in steps] != list(range(len(steps))):
                raise self._damaged("its undo history has gaps")
            audio: dict[str, FloatArray] = {}
            snapshots = []
            for _, digest, label in steps:
                found = con.execute(
                    "SELECT json FROM manifest WHERE digest = ?", (digest,)
                ).fetchone()
                if found is None:
                    raise self._damaged("a document snapshot is missing")
                manifest = _parse_manifest(found[0], self.path)
                ids = [
                    r[0]
                    for r in con.execute(
                        "SELECT audio_id FROM manifest_audio WHERE digest = ?", (digest,)
                    )
                ]
                for aid in ids:
                    if aid not in audio:
                        audio[aid] = self._read_audio(con, aid)
                snapshots.append(Snapshot(label, manifest, {a: audio[a] for a in ids}))
            try:
                history = HistoryRecord(tuple(snapshots), int(current), saved)
            except ValueError as exc:
                raise self._damaged(str(exc)) from exc
        return StoredState(slot, history, int(revision), float(written_at))

    def meta(self, key: str) -> str | None:
        """A value of the file's ``meta`` table ("title", "created_at", "created_by")."""
        with self._transaction(write=False) as con:
            row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok" for a sound file."""
        with self._transaction(write=False) as con:
            rows = con.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    # ---------------------------------------------------------------- writing

    def write(
        self, slot: str, history: HistoryRecord, *, sync: bool = True, compress: bool | None = None
    ) -> None:
        """Replace ``slot`` with ``history`` in one durable transaction.

        Only manifests and audio not yet in the file are written; whatever no slot uses any
        more is deleted in the same transaction.

        Args:
            slot: the slot.
            history: what it holds from now on.
            sync: wait until the disk has it (fsync). Without, the transaction is safe from a
                killed process as soon as this returns, and from a power cut once the next
                synced write (which syncs the whole log) returns: for big writes that nothing
                needs yet, so that the next small write is not queued behind a long fsync.

            compress: store new audio compressed (None: as the file was opened).

        Raises:
            ProjectFileError: the disk is full or the file cannot be written.
        """
        with self._lock:
            kept = self.compress
            if compress is not None:
                self.compress = compress
            if not sync:
                self._pragma("synchronous=NORMAL")
            try:
                self._write({slot: history}, clear=())
            finally:
                self.compress = kept
                if not sync:
                    self._pragma("synchronous=FULL")

    def _pragma(self, setting: str) -> None:
        con = self._con
        if con is None:
            return
        try:
            con.execute(f"PRAGMA {setting}")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path, writing=True) from exc

    def save(self, history: HistoryRecord) -> None:
        """Write the saved slot and clear the autosave slot, atomically.

        An autosave whose current state is nowhere in the saved history is newer work (an
        edit made while the save was on its way) and stays.
        """
        with self._lock:
            newer = self.current_digest(AUTOSAVE)
            keep = newer is not None and newer not in {s.digest for s in history.snapshots}
            self._write({SAVED: history}, clear=() if keep else (AUTOSAVE,))

    def clear(self, slot: str) -> None:
        """Empty ``slot`` (and drop what only it used)."""
        self._write({}, clear=(slot,))

    def copy_to(self, target: Path) -> None:
        """Write a copy of the whole file, as it is now, to ``target`` (SQLite's backup).

        Raises:
            ProjectFileError: ``target`` exists or cannot be written.
        """
        if target.exists():
            raise ProjectFileError(f"{target.name} already exists; nothing was copied.")
        with self._lock:
            con = self._con
            if con is None:
                raise ProjectFileError(f"The project {self.path.name} is already closed.")
            try:
                dest = sqlite3.connect(str(target))
                try:
                    con.backup(dest)
                finally:
                    dest.close()
            except (sqlite3.Error, OSError) as exc:
                with contextlib.suppress(OSError):
                    target.unlink(missing_ok=True)
                raise ProjectFileError(
                    f"A copy of {self.path.name} cannot be written to {target.parent} ({exc})."
                ) from exc

    def set_meta(self, key: str, value: str) -> None:
        """Set a value in the file's ``meta`` table."""
        with self._transaction(write=True) as con:
            con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Fold the write-ahead log into the file and release the lock. Safe to call twice."""
        with self._lock:
            con, self._con = self._con, None
            if con is None:
                return
            if self.read_only:
                con.close()
                # A reader in a writable folder leaves an empty log and its index: ours.
                for p in self._created:
                    with contextlib.suppress(OSError):
                        p.unlink(missing_ok=True)
                return
            try:
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:  # the data is safe in the WAL; SQLite replays it
                _log.warning("checkpoint of %s failed: %s", self.path, exc)
            con.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._con is None

    def __enter__(self) -> ProjectFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        with self._lock:
            con = self._con
            if con is None:
                raise ProjectFileError(
                    f"The project {self.path.name} is already closed; open it again."
                )
            if write and self.read_only:
                raise ProjectFileError(
                    f"The project {self.path.name} is open read-only; use Save As to save "
                    "it somewhere you can write."
                )
            try:
                con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            except sqlite3.Error as exc:
                if con.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        con.execute("ROLLBACK")
                raise _translate(exc, self.path, writing=write) from exc

    def _write(self, slots: Mapping[str, HistoryRecord], clear: Iterable[str]) -> None:
        with self._lock:
            new_manifests: set[str] = set()
            new_audio: set[str] = set()
            try:
                with self._transaction(write=True) as con:
                    now = time.time()
                    for name in clear:
                        con.execute("DELETE FROM history WHERE slot = ?", (name,))
                        con.execute("DELETE FROM slot WHERE name = ?", (name,))
                    for name, history in slots.items():
                        self._write_slot(con, name, history, now, new_manifests, new_audio)
                    collected = self._collect_garbage(con)
            except BaseException:
                self._reload_ids_quietly()
                raise
            self._manifests |= new_manifests
            self._audio |= new_audio
            if collected:
                self._reload_ids()

    def _write_slot(
        self,
        con: sqlite3.Connection,
        name: str,
        history: HistoryRecord,
        now: float,
        new_manifests: set[str],
        new_audio: set[str],
    ) -> None:
        for snap in history.snapshots:
            digest = snap.digest
            if digest not in self._manifests and digest not in new_manifests:
                con.execute(
                    "INSERT OR IGNORE INTO manifest (digest, json) VALUES (?, ?)",
                    (digest, snap.text),
                )
                con.executemany(
                    "INSERT OR IGNORE INTO manifest_audio (digest, audio_id) VALUES (?, ?)",
                    [(digest, aid) for aid in snap.audio],
                )
                new_manifests.add(digest)
            for aid, samples in snap.audio.items():
                if aid not in self._audio and aid not in new_audio:
                    self._insert_audio(con, aid, samples)
                    new_audio.add(aid)
        con.execute("DELETE FROM history WHERE slot = ?", (name,))
        con.executemany(
            "INSERT INTO history (slot, pos, digest, label) VALUES (?, ?, ?, ?)",
            [(name, i, s.digest, s.label) for i, s in enumerate(history.snapshots)],
        )
        con.execute(
            "INSERT OR REPLACE INTO slot (name, current, saved, revision, written_at) VALUES "
            "(?, ?, ?, COALESCE((SELECT revision FROM slot WHERE name = ?), 0) + 1, ?)",
            (name, history.current, history.saved, name, now),
        )

    def _insert_audio(self, con: sqlite3.Connection, aid: str, samples: Any) -> None:
        array = np.asarray(getattr(samples, "samples", samples))
        if array.dtype != np.float32 or array.ndim != 2:
            raise TypeError(
                f"audio {aid} must be float32 (channels, frames), got {array.dtype} {array.shape}"
            )
        raw = np.ascontiguousarray(array, dtype="<f4")
        data = raw.data.cast("B")
        crc = 0
        for seq, start in enumerate(range(0, max(len(data), 1), CHUNK_BYTES)):
            part = data[start : start + CHUNK_BYTES]
            crc = zlib.crc32(part, crc)
            codec, blob = _encode(part, self.compress)
            con.execute(
                "INSERT INTO audio_chunk (audio_id, seq, codec, data) VALUES (?, ?, ?, ?)",
                (aid, seq, codec, blob),
            )
        con.execute(
            "INSERT INTO audio (id, channels, frames, nbytes, crc32) VALUES (?, ?, ?, ?, ?)",
            (aid, int(array.shape[0]), int(array.shape[1]), len(data), crc),
        )

    def _read_audio(self, con: sqlite3.Connection, aid: str) -> FloatArray:
        row = con.execute(
            "SELECT channels, frames, nbytes, crc32 FROM audio WHERE id = ?", (aid,)
        ).fetchone()
        if row is None:
            raise self._damaged(f"the audio {aid[:12]} is missing")
        channels, frames, nbytes, crc = (int(v) for v in row)
        name = aid[:12]
        if channels < 1 or frames < 1 or nbytes != channels * frames * 4:
            raise self._damaged(f"the audio {name} has the wrong length")
        if frames > MAX_FRAMES:
            raise self._damaged(f"the audio {name} claims {frames} frames, more than any song")
        (parts,) = con.execute(
            "SELECT COUNT(*) FROM audio_chunk WHERE audio_id = ?", (aid,)
        ).fetchone()
        if nbytes > int(parts) * CHUNK_BYTES:
            # The file cannot hold what the header claims: never allocate for the claim.
            raise self._damaged(f"the audio {name} claims more samples than the file holds")
        try:
            out = np.empty(nbytes, dtype=np.uint8)  # filled chunk by chunk: no second copy
        except MemoryError:
            raise ProjectFileError(
                f"The project {self.path.name} holds audio ({_mb(nbytes)}) that does not fit "
                "in the memory free now; close other programs and open it again."
            ) from None
        pos = 0
        running = 0
        for codec, blob in con.execute(
            "SELECT codec, data FROM audio_chunk WHERE audio_id = ? ORDER BY seq", (aid,)
        ):
            part = _decode(codec, blob, self.path)
            if pos + len(part) > nbytes:
                raise self._damaged(f"the audio {name} has the wrong length")
            out[pos : pos + len(part)] = np.frombuffer(part, dtype=np.uint8)
            running = zlib.crc32(part, running)
            pos += len(part)
        if pos != nbytes:
            raise self._damaged(f"the audio {name} has the wrong length")
        if running != crc:
            raise self._damaged(f"the audio {name} does not match its checksum")
        array = out.view("<f4").reshape(channels, frames)
        if array.dtype != np.float32:  # a big-endian machine: convert once
            array = array.astype(np.float32)
        array.setflags(write=False)
        return array

    def _collect_garbage(self, con: sqlite3.Connection) -> bool:
        changed = 0
        for sql in (
            "DELETE FROM manifest WHERE digest NOT IN (SELECT digest FROM history)",
            "DELETE FROM manifest_audio WHERE digest NOT IN (SELECT digest FROM manifest)",
            "DELETE FROM audio WHERE id NOT IN (SELECT audio_id FROM manifest_audio)",
            "DELETE FROM audio_chunk WHERE audio_id NOT IN (SELECT id FROM audio)",
        ):
            changed += con.execute(sql).rowcount
        return changed > 0

    def _reload_ids(self) -> None:
        with self._transaction(write=False) as con:
            self._manifests = {r[0] for r in con.execute("SELECT digest FROM manifest")}
            self._audio = {r[0] for r in con.execute("SELECT id FROM audio")}

    def _reload_ids_quietly(self) -> None:
        try:
            self._reload_ids()
        except ProjectFileError as exc:
            _log.warning("cannot re-read %s after a failed write: %s", self.path, exc)

    def _damaged(self, detail: str) -> ProjectFileError:
        return ProjectFileError(
            f"The project {self.path.name} is damaged ({detail}); open a backup copy instead."
        )


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.0f} MB"


def _encode(raw: memoryview, compress: bool) -> tuple[str, bytes]:
    if not compress:
        return _CODEC_RAW, bytes(raw)
    flac = _encode_flac(np.frombuffer(raw, dtype="<f4"))
    if flac is not None:
        return flac
    # Grouping the bytes by significance first (byte shuffle) lets zlib find the redundancy of
    # float samples: exponents and high mantissa bytes repeat, low bytes are noise.
    shuffled = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 4).T.tobytes()
    return _CODEC_ZLIB, zlib.compress(shuffled, 1)


def _integer_bits(floats: npt.NDArray[np.float32]) -> int | None:
    """16 or 24 when every sample is exactly an integer sample of that depth scaled to
    [-1, 1) (a decoded 16- or 24-bit file untouched since), else None."""
    if floats.size == 0 or (np.signbit(floats) & (floats == 0)).any():
        return None  # -0.0 would come back as +0.0: not bit-exact
    for bits in (16, 24):
        scale = np.float32(1 << (bits - 1))
        q = floats * scale  # exact: a power of two
        if q.min() >= -scale and q.max() <= scale - 1 and np.array_equal(q, np.rint(q)):
            return bits
    return None


def _encode_flac(floats: npt.NDArray[np.float32]) -> tuple[str, bytes] | None:
    """FLAC (lossless, at the samples' own bit depth) when the samples allow it, else None."""
    bits = _integer_bits(floats)
    if bits is None:
        return None
    if bits == 16:
        ints: npt.NDArray[np.generic] = (floats * np.float32(1 << 15)).astype(np.int16)
        subtype, codec = "PCM_16", _CODEC_FLAC16
    else:
        # libsndfile takes 24-bit samples in the top bits of an int32.
        ints = (floats * np.float32(1 << 23)).astype(np.int32) << 8
        subtype, codec = "PCM_24", _CODEC_FLAC24
    buf = io.BytesIO()
    sf.write(buf, ints, _FLAC_RATE, subtype=subtype, format="FLAC")
    return codec, buf.getvalue()


def _decode_flac(codec: str, blob: bytes, path: Path) -> bytes:
    try:
        if codec == _CODEC_FLAC16:
            ints = sf.read(io.BytesIO(blob), dtype="int16")[0]
            floats = ints.astype(np.float32) / np.float32(1 << 15)
        else:
            ints = sf.read(io.BytesIO(blob), dtype="int32")[0] >> 8
            floats = ints.astype(np.float32) / np.float32(1 << 23)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise ProjectFileError(
            f"The project {path.name} is damaged (compressed audio cannot be read: {exc}); "
            "open a backup copy instead."
        ) from exc
    data: bytes = floats.astype("<f4", copy=False).tobytes()
    return data


def _decode(codec: str, blob: bytes, path: Path) -> bytes:
    if codec == _CODEC_RAW:
        return bytes(blob)
    if codec in (_CODEC_FLAC16, _CODEC_FLAC24):
        return _decode_flac(codec, blob, path)
    if codec == _CODEC_ZLIB:
        try:
            shuffled = zlib.decompress(blob)
        except zlib.error as exc:
            raise ProjectFileError(
                f"The project {path.name} is damaged (compressed audio cannot be read: {exc}); "
                "open a backup copy instead."
            ) from exc
        if len(shuffled) % 4:
            raise ProjectFileError(
                f"The project {path.name} is damaged (compressed audio has a broken length); "
                "open a backup copy instead."
            )
        return np.frombuffer(shuffled, dtype=np.uint8).reshape(4, -1).T.tobytes()
    raise ProjectFileError(
        f"The project {path.name} stores audio in a way this SA3 Studio does not know "
        f"({codec!r}); update SA3 Studio to open it."
    )


def _parse_manifest(text: str, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # nested beyond Python's limit: not ours
        raise ProjectFileError(
            f"The project {path.name} is damaged (a document snapshot is not valid JSON); "
            "open a backup copy instead."
        ) from exc
    if not isinstance(value, dict):
        raise ProjectFileError(
            f"The project {path.name} is damaged (a document snapshot is not an object); "
            "open a backup copy instead."
        )
    return value


def _connect(path: Path, *, read_only: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """A connection to ``path``; ``read_only`` opens it with SQLite's ``mode=ro``, which never
    writes the file (not even the checkpoint a closing connection makes); ``immutable`` also
    promises SQLite that nobody changes the file (a read-only folder, where SQLite cannot
    create the files it shares with other readers)."""
    if read_only:
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
        if immutable:
            uri += "&immutable=1"
        con = sqlite3.connect(
            uri,
            uri=True,
            timeout=_BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        return con
    con = sqlite3.connect(
        str(path), timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    con.execute("PRAGMA locking_mode=EXCLUSIVE")
    return con


def _open_minding_stray_wal(path: Path) -> sqlite3.Connection:
    """:func:`_open_checked`, ignoring a write-ahead log that belongs to another file.

    SQLite applies any valid ``-wal`` beside a database to it, even one copied there from
    another file; an intact project then reads as damaged or as not a project. When the file
    itself says it is ours but does not open with its log, the log is set aside (renamed, never
    deleted) and the file opened again; if that does not help, the log goes back.
    """
    wal = Path(f"{path}-wal")
    if not wal.exists():
        return _open_checked(path)
    # Look through a read-only connection first: it reads the log but never folds it into
    # the file, so a log that does not belong here can still be set aside unharmed.
    try:
        _open_checked(path, read_only=True).close()
    except ProjectFileError as exc:
        if "already open" in str(exc) or not _header_is_ours(path):
            raise  # in use elsewhere (its log is live), or not ours at all
        stamp = time.strftime("%Y%m%d-%H%M%S")
        moved: list[tuple[Path, Path]] = []
        for p in (wal, Path(f"{path}-shm")):
            if p.exists():
                aside = p.with_name(f"{p.name}.stray-{stamp}")
                try:
                    os.replace(p, aside)
                except OSError:
                    break
                moved.append((p, aside))
        try:
            _open_checked(path, read_only=True).close()
        except ProjectFileError:
            for p, aside in moved:
                with contextlib.suppress(OSError):
                    os.replace(aside, p)
            raise
        _log.warning("%s had a write-ahead log of another file; it was set aside", path)
    return _open_checked(path)


def _header_is_ours(path: Path) -> bool:
    """True when the database header (ignoring any log) carries our application id."""
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except OSError:
        return False
    return (
        len(header) == 100
        and header.startswith(_SQLITE_MAGIC)
        and int.from_bytes(header[68:72], "big") == APPLICATION_ID
    )


def _open_checked(
    path: Path, *, read_only: bool = False, immutable: bool = False
) -> sqlite3.Connection:
    """Connect to ``path`` after checking it is a project this build can read (the checks
    only read; ``read_only`` and ``immutable``: see :func:`_connect`)."""
    name = path.name
    if not path.exists():
        raise ProjectFileError(
            f"The project {name} does not exist; it may have been moved, renamed or deleted."
        )
    if not path.is_file():
        raise ProjectFileError(f"{name} is a folder, not an SA3 Studio project file.")
    try:
        with path.open("rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise ProjectFileError(
            f"The project {name} cannot be read ({exc.strerror}); check its permissions."
        ) from exc
    if header.startswith(_SQLITE_MAGIC) and len(header) < 100:
        raise ProjectFileError(
            f"The project {name} is damaged (the file is cut off); open a backup copy instead."
        )
    if not header.startswith(_SQLITE_MAGIC):
        raise ProjectFileError(
            f"{name} is not an SA3 Studio project (it is not a project file at all); open a "
            f"{PROJECT_SUFFIX} file saved by SA3 Studio."
        )
    try:
        con = _connect(path, read_only=read_only, immutable=immutable)
    except sqlite3.Error as exc:
        raise _translate(exc, path) from exc
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise ProjectFileError(
                f"{name} is a database, but not an SA3 Studio project; open a "
                f"{PROJECT_SUFFIX} file saved by SA3 Studio."
            )
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > FORMAT_VERSION:
            raise ProjectFileError(
                f"This project was saved by a newer SA3 Studio (format {version}); "
                "update SA3 Studio to open it."
            )
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version < 1 or not _TABLES.issubset(tables):
            raise ProjectFileError(
                f"The project {name} is damaged (its tables are incomplete); open a backup "
                "copy instead."
            )
        _check_length(con, path)
    except ProjectFileError:
        con.close()
        raise
    except sqlite3.Error as exc:
        con.close()
        raise _translate(exc, path) from exc
    return con


def _check_length(con: sqlite3.Connection, path: Path) -> None:
    """Refuse a file shorter than its own header says (cut off while copying)."""
    if Path(f"{path}-wal").exists():
        return  # pages may legitimately live in the write-ahead log until the next checkpoint
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    if pages * page_size > path.stat().st_size:
        raise ProjectFileError(
            f"The project {path.name} is damaged (the file is shorter than it should be; it "
            "was probably cut off while copying); open a backup copy instead."
        )


def _translate(exc: sqlite3.Error, path: Path, *, writing: bool = False) -> ProjectFileError:
    """A ProjectFileError with a sentence for an SQLite failure."""
    text = str(exc).lower()
    name = path.name
    if "locked" in text or "busy" in text:
        return ProjectFileError(
            f"{name} is already open in another SA3 Studio window; switch to that window, or "
            "close the project there and try again."
        )
    if "not a database" in text or "file is encrypted" in text:
        return ProjectFileError(
            f"{name} is not an SA3 Studio project (it is not a project file at all); open a "
            f"{PROJECT_SUFFIX} file saved by SA3 Studio."
        )
    if "full" in text:
        return ProjectFileError(
            f"The project {name} could not be written because the disk is full; free some "
            "space, or use Save As to save it on another disk."
        )
    if "readonly" in text or "read-only" in text or "permission" in text:
        return ProjectFileError(
            f"The project {name} cannot be written (the file or its folder is read-only); use "
            "Save As to save it somewhere you can write."
        )
    if "malformed" in text or "corrupt" in text or not isinstance(exc, sqlite3.OperationalError):
        detail = "parts of the file are missing or overwritten" if "malformed" in text else exc
        return ProjectFileError(
            f"The project {name} is damaged ({detail}); open a backup copy instead."
        )
    if writing:
        return ProjectFileError(
            f"The project {name} could not be written ({exc}); use Save As to save it elsewhere."
        )
    return ProjectFileError(
        f"The project {name} could not be read ({exc}); check the disk, or open a backup copy."
    )


def _build_empty(target: Path, title: str) -> Path:
    """A complete empty project under a temporary name next to ``target``."""
    tmp = _temp_path(target)
    try:
        con = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            # A temporary file, fsynced before it appears under its real name: no need to
            # sync each step here.
            con.execute("PRAGMA journal_mode=DELETE")
            con.execute("PRAGMA synchronous=OFF")
            con.executescript(
                f"BEGIN; {_SCHEMA} PRAGMA application_id={APPLICATION_ID}; "
                f"PRAGMA user_version={FORMAT_VERSION}; COMMIT;"
            )
            con.execute("BEGIN")
            con.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("title", title),
                    ("created_at", repr(time.time())),
                    ("created_by", "SA3 Studio"),
                ],
            )
            con.execute("COMMIT")
        finally:
            con.close()
    except (sqlite3.Error, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise ProjectFileError(
            f"A project cannot be created in {target.parent} ({exc}); choose a folder you can "
            "write to."
        ) from exc
    return tmp


def _temp_path(target: Path) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent
        )
    except OSError as exc:
        raise ProjectFileError(
            f"A file cannot be written in {target.parent} ({exc.strerror}); choose a folder "
            "you can write to."
        ) from exc
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # SQLite creates it afresh; mkstemp only reserved a unique name
    return tmp


_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)-[^.]+\.tmp(?P<side>-wal|-shm|-journal)?$")
_OLD_TEMP_NAME = re.compile(r"^\..+\.sa3proj\.[^.]+\.tmp(-wal|-shm|-journal)?$")
_SAVE_FOLDERS = "save-folders.txt"
_SAVE_FOLDERS_KEPT = 50


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform.startswith("win"):
        return True  # no cheap check: leave it to the age rule
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _note_save_folder(recovery_dir: Path, folder: Path) -> None:
    """Remember a folder a Save As writes into, so that its leftovers are found later."""
    record = recovery_dir / _SAVE_FOLDERS
    try:
        known = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
        entry = str(folder.resolve())
        others = [k for k in known if k and k != entry][-(_SAVE_FOLDERS_KEPT - 1) :]
        known = [*others, entry]
        recovery_dir.mkdir(parents=True, exist_ok=True)
        record.write_text("\n".join(known) + "\n", encoding="utf-8")
    except OSError as exc:
        _log.info("cannot note the folder %s for clean-up: %s", folder, exc)


def clean_leftovers(recovery_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Delete temporary files that killed saves and creations of SA3 Studio left behind.

    Looks in the recovery folder and in the folders Save As wrote into. Only files named the
    way this program names its temporary files are touched, and only when the process that
    made them is gone (its id is in the name); older-style names only when hours old.

    Returns:
        The files deleted.
    """
    folder = _recovery_dir(recovery_dir)
    folders = [folder]
    with contextlib.suppress(OSError):
        record = folder / _SAVE_FOLDERS
        if record.exists():
            folders += [Path(x) for x in record.read_text(encoding="utf-8").splitlines() if x]
    removed: list[Path] = []
    cutoff = time.time() - STALE_TEMP_S
    for place in dict.fromkeys(folders):
        try:
            candidates = [p for p in place.iterdir() if p.name.startswith(".")]
        except OSError:
            continue
        for p in candidates:
            match = _TEMP_NAME.match(p.name)
            try:
                if match is not None:
                    if _pid_alive(int(match["pid"])):
                        continue
                elif not (_OLD_TEMP_NAME.match(p.name) and p.stat().st_mtime < cutoff):
                    continue
                if not p.is_file():
                    continue
                p.unlink()
                removed.append(p)
            except OSError as exc:
                _log.info("cannot remove the leftover %s: %s", p, exc)
    if removed:
        _log.info("removed %d leftover temporary files", len(removed))
    return removed


STALE_TEMP_S = 3600.0
"""Age after which a temporary file of an interrupted Save As is deleted."""


def _remove_stale_temps(target: Path) -> None:
    """Delete temporary files an interrupted Save As to ``target`` left (hours old only)."""
    cutoff = time.time() - STALE_TEMP_S
    try:
        candidates = list(target.parent.glob(f".{target.name}.*.tmp*"))
    except OSError:
        return
    for p in candidates:
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
        except OSError as exc:
            _log.info("cannot remove the old temporary file %s: %s", p, exc)


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    if directory and sys.platform.startswith("win"):
        return  # Windows cannot open a directory for fsync; NTFS journals the rename
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_file(tmp: Path, target: Path, *, replace: bool) -> None:
    """Make the finished file ``tmp`` appear at ``target`` in one step, durably."""
    try:
        _fsync_path(tmp)
        if replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target exists: never clobber
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if target.exists():
                    raise FileExistsError(str(target)) from None
                os.replace(tmp, target)
        _fsync_path(target.parent, directory=True)
    except FileExistsError as exc:
        raise ProjectFileError(
            f"{target.name} already exists; choose another name or delete it first."
        ) from exc
    except OSError as exc:
        raise ProjectFileError(
            f"The project could not be written to {target} ({exc.strerror}); choose another "
            "folder or free some disk space."
        ) from exc


# --------------------------------------------------------------------------------------------
# Document helpers
# --------------------------------------------------------------------------------------------


def snapshot_of(project: Project, label: str = "") -> Snapshot:
    """The store's record of a document snapshot: its manifest and its audio by content id."""
    buffers = project.audio_buffers()
    return Snapshot(label, project_to_manifest(project), {k: a.samples for k, a in buffers.items()})


def _project_of(snapshot: Snapshot, cache: dict[str, AudioData]) -> Project:
    def lookup(cid: str) -> AudioData:
        if cid not in cache:
            samples = snapshot.audio[cid]  # KeyError: reported by serialize as missing audio
            cache[cid] = AudioData(samples, cid)
        return cache[cid]

    return project_from_manifest(snapshot.manifest, lookup)


class UndoHistory(Protocol):
    """What the store needs from the document's undo history."""

    def snapshots(self) -> Sequence[tuple[str, Project]]:
        """``(label, project)`` of every state, oldest first."""

    @property
    def index(self) -> int:
        """Position of the current state in :meth:`snapshots`."""

    @property
    def saved_index(self) -> int | None:
        """Position of the saved state, or None."""


class SnapshotCache:
    """Remembers the record made for each project object, so that an autosave after an edit
    serialises only the snapshots that changed (projects are immutable).
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Project, Snapshot]] = {}

    def record(
        self, entries: Sequence[tuple[str, Project]], current: int, saved: int | None = None
    ) -> HistoryRecord:
        """A :class:`HistoryRecord` for ``(label, project)`` entries, reusing earlier records.

        Args:
            entries: every state, oldest first.
            current: index of the current state.
            saved: index of the saved state, or None.
        """
        kept: dict[int, tuple[Project, Snapshot]] = {}
        snapshots = []
        for label, project in entries:
            hit = self._by_id.get(id(project))
            if hit is not None and hit[0] is project and hit[1].label == label:
                snap = hit[1]
            else:
                snap = snapshot_of(project, label)
            kept[id(project)] = (project, snap)
            snapshots.append(snap)
        self._by_id = kept
        return HistoryRecord(tuple(snapshots), current, saved)

    def record_history(self, history: UndoHistory) -> HistoryRecord:
        """A :class:`HistoryRecord` for the document's undo history."""
        return self.record(history.snapshots(), history.index, history.saved_index)


# --------------------------------------------------------------------------------------------
# Sessions, autosave and recovery
# --------------------------------------------------------------------------------------------


DATA_DIR_ENV = "SA3_STUDIO_DATA_DIR"
"""Environment variable that overrides :func:`user_data_dir` (tests, portable installs)."""


def user_data_dir() -> Path:
    """The per-user data folder of SA3 Studio on this platform (or ``$SA3_STUDIO_DATA_DIR``)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    home = Path.home()
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "SA3 Studio"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "SA3 Studio"
    base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "sa3-studio"


def default_recovery_dir() -> Path:
    """Where autosaves of unsaved projects and pointers to open projects live."""
    return user_data_dir() / "recovery"


@dataclass(frozen=True)
class Recoverable:
    """Work a previous session left unsaved (it crashed or was killed).

    Attributes:
        file: the file holding the autosave (a recovery file, or the project itself).
        project_path: the saved project it belongs to; None if it was never saved.
        title: what to call it ("Untitled", or the project's name).
        written_at: when it was last autosaved (seconds since the epoch).
        label: undo label of its last state ("" when it is the opened state).
        steps: number of states in its undo history.
        pointer: the pointer file naming the project (None for untitled work).
    """

    file: Path
    project_path: Path | None
    title: str
    written_at: float
    label: str
    steps: int
    pointer: Path | None = None

    @property
    def untitled(self) -> bool:
        """True for work that was never saved as a project."""
        return self.project_path is None


class AutosaveWriter:
    """Writes every committed state to the autosave slot at once (in its own transaction).

    The application calls :meth:`commit` after each committed edit and each finished
    generation; when it returns, the state is on disk. It may be called from a worker thread.
    """

    def __init__(self, file: ProjectFile, pointer: Path | None) -> None:
        """Create a writer for ``file``.

        Args:
            file: the open project (or recovery) file.
            pointer: for a saved project, the pointer file to write in the recovery folder
                before the first autosave (so that a crash is found on the next start).
        """
        self.file = file
        self.pointer = pointer
        self._pointer_written = False
        self._lock = threading.Lock()
        self.last_revision: int | None = None

    def commit(self, history: HistoryRecord) -> None:
        """Make ``history`` the autosaved state, durably.

        Raises:
            ProjectFileError: the disk is full or the file cannot be written.
        """
        with self._lock:
            if self.file.current_digest(SAVED) == history.current_snapshot.digest:
                # The saved state (an autosave queued behind the save that wrote it): nothing
                # newer to keep, so no recovery is offered for it.
                if self.file.has(AUTOSAVE):
                    self.file.clear(AUTOSAVE)
                self._remove_pointer()
                return
            if self.pointer is not None and not self._pointer_written:
                _write_pointer(self.pointer, self.file.path)
                self._pointer_written = True
            self.file.write(AUTOSAVE, history)

    def discard(self) -> None:
        """Forget the autosaved state (after a save, or when the user discards the changes)."""
        with self._lock:
            self.file.clear(AUTOSAVE)
            self._remove_pointer()

    def saved(self) -> None:
        """Note that a save cleared the autosave slot; the pointer is no longer needed."""
        with self._lock:
            self._remove_pointer()

    def _remove_pointer(self) -> None:
        if self.pointer is not None:
            self.pointer.unlink(missing_ok=True)
        self._pointer_written = False


def _pointer_for(recovery_dir: Path, project: Path) -> Path:
    key = hashlib.blake2b(str(project.resolve()).encode("utf-8"), digest_size=8).hexdigest()
    return recovery_dir / f"project-{key}{_POINTER_SUFFIX}"


def _write_pointer(pointer: Path, project: Path) -> None:
    try:
        pointer.parent.mkdir(parents=True, exist_ok=True)
        tmp = pointer.with_name(pointer.name + ".tmp")
        tmp.write_text(json.dumps({"project": str(project.resolve())}), encoding="utf-8")
        _fsync_path(tmp)
        os.replace(tmp, pointer)
        _fsync_path(pointer.parent, directory=True)
    except OSError as exc:
        raise ProjectFileError(
            f"The recovery folder {pointer.parent} cannot be written ({exc.strerror}); check "
            "its permissions or choose another data folder."
        ) from exc


class ProjectSession:
    """The project the application has open: where it lives, autosave, save and recovery.

    Make one with :meth:`new` (untitled), :meth:`open` (a saved project) or :meth:`resume`
    (work found by :func:`find_recoverable`).

    Attributes:
        path: the saved project, or None while untitled.
        file: the open file (the project, or the untitled recovery file).
        autosave: call ``autosave.commit(record)`` after each commit (see :meth:`commit`).
        recovery_dir: where recovery files and pointers live.
    """

    def __init__(
        self,
        file: ProjectFile,
        path: Path | None,
        recovery_dir: Path,
        *,
        title: str,
    ) -> None:
        """Use :meth:`new`, :meth:`open` or :meth:`resume`."""
        self.file = file
        self.path = path
        self.recovery_dir = recovery_dir
        self._title = title
        pointer = None if path is None else _pointer_for(recovery_dir, path)
        self.autosave = AutosaveWriter(file, pointer)
        self.snapshots = SnapshotCache()
        # Held while a commit writes and while Save As switches files: a Save As builds its
        # copy while commits keep going into the old file.
        self._switch = threading.RLock()

    # ---------------------------------------------------------------- making sessions

    @classmethod
    def new(
        cls,
        *,
        recovery_dir: str | os.PathLike[str] | None = None,
        title: str = "Untitled",
        compress: bool = True,
    ) -> ProjectSession:
        """Start an untitled project; it autosaves into a file in the recovery folder.

        Raises:
            ProjectFileError: the recovery folder cannot be written.
        """
        folder = _recovery_dir(recovery_dir)
        name = f"untitled-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        file = ProjectFile.create(
            folder / f"{name}{PROJECT_SUFFIX}", title=title, compress=compress
        )
        return cls(file, None, folder, title=title)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        recovery_dir: str | os.PathLike[str] | None = None,
        compress: bool = True,
    ) -> ProjectSession:
        """Open a saved project (locked until :meth:`close`).

        Then :meth:`load` gives the saved state and :meth:`recovered` any newer autosaved
        work a crash left in the file.

        Raises:
            ProjectFileError: see :meth:`ProjectFile.open`.
        """
        target = Path(path)
        file = ProjectFile.open(target, compress=compress)
        return cls(file, target, _recovery_dir(recovery_dir), title=target.stem)

    @classmethod
    def resume(
        cls,
        item: Recoverable,
        *,
        recovery_dir: str | os.PathLike[str] | None = None,
        compress: bool = True,
    ) -> ProjectSession:
        """Open the work described by ``item``; :meth:`recovered` then returns it.

        Raises:
            ProjectFileError: the file cannot be opened (see :meth:`ProjectFile.open`).
        """
        folder = _recovery_dir(recovery_dir)
        if item.project_path is not None:
            return cls.open(item.project_path, recovery_dir=folder, compress=compress)
        file = ProjectFile.open(item.file, compress=compress)
        return cls(file, None, folder, title=item.title)

    # ---------------------------------------------------------------- state

    @property
    def title(self) -> str:
        """The project's name for the window title."""
        return self._title

    @property
    def untitled(self) -> bool:
        """True until the project is saved somewhere."""
        return self.path is None

    def load(self) -> StoredState | None:
        """The saved state of the project (None for an untitled session).

        Raises:
            ProjectFileError: the file is damaged.
        """
        return self.file.read(SAVED)

    def recovered(self) -> StoredState | None:
        """Work newer than the saved state, left by a session that did not close cleanly.

        Raises:
            ProjectFileError: the file is damaged.
        """
        return self.file.read(AUTOSAVE)

    def discard_recovered(self) -> None:
        """Throw away autosaved work (the user chose not to recover it)."""
        self.autosave.discard()

    def set_aside_recovered(self) -> Path | None:
        """Keep a copy of the file as it is, then drop its autosaved work (it is damaged).

        The saved state stays as it was; the copy keeps the damaged autosave for whoever
        wants to try to rescue it. The copy goes next to the project, or into the recovery
        folder when that folder is read-only.

        Returns:
            Where the copy is, or None when no copy could be written anywhere.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{self.file.path.stem}.damaged-autosave-{stamp}{PROJECT_SUFFIX}"
        copy: Path | None = None
        for folder in (self.file.path.parent, self.recovery_dir):
            try:
                self.file.copy_to(folder / name)
            except ProjectFileError as exc:
                _log.warning("cannot keep a copy of %s in %s: %s", self.file.path, folder, exc)
                continue
            copy = folder / name
            break
        try:
            self.autosave.discard()
        except ProjectFileError as exc:
            _log.warning("cannot drop the damaged autosave of %s: %s", self.file.path, exc)
        return copy

    def prime(self, history: HistoryRecord | UndoHistory) -> None:
        """Write the opened state of an untitled session into the file (its audio above all).

        Run in the background right after opening an audio file: the first edit's autosave
        then writes only what that edit changed, not the whole song. Does nothing for a saved
        project (its saved slot holds the audio already).

        Raises:
            ProjectFileError: the disk is full or the file cannot be written.
        """
        if self.path is None:
            # Not synced and not compressed (fast, so the first edit is not queued behind
            # it); the first autosave that uses this audio syncs it with itself, and Save As
            # compresses it into the project.
            self.file.write(BASE, self._record(history), sync=False, compress=False)

    # ---------------------------------------------------------------- writing

    def commit(self, history: HistoryRecord | UndoHistory) -> None:
        """Autosave after a committed edit or a finished generation; durable on return.

        Args:
            history: a :class:`HistoryRecord`, or the document's undo history (converted
                through :attr:`snapshots`, serialising only snapshots not seen before).

        Raises:
            ProjectFileError: the disk is full or the file cannot be written.
        """
        record = self._record(history)
        with self._switch:
            self.autosave.commit(record)

    def save(self, history: HistoryRecord | UndoHistory) -> None:
        """Save the project in place, atomically (one transaction), and clear the autosave.

        Raises:
            ProjectFileError: the project is untitled (use :meth:`save_as`), or it cannot be
                written.
        """
        if self.path is None:
            raise ProjectFileError(
                "This project has not been saved yet; use Save As to choose where to save it."
            )
        record = _as_saved(self._record(history))
        self.file.save(record)
        if not self.file.has(AUTOSAVE):
            self.autosave.saved()

    def save_as(self, path: str | os.PathLike[str], history: HistoryRecord | UndoHistory) -> None:
        """Save the project to a new file (built under a temporary name, then renamed) and
        continue working on that file.

        An untitled session's recovery file is deleted afterwards; a saved project left behind
        keeps its saved state and loses its autosave (the work moved to the new file).

        Raises:
            ProjectFileError: the target is open in another SA3 Studio, or cannot be written.
        """
        target = Path(path)
        if self.path is not None and _same_file(target, self.path):
            self.save(history)
            return
        record = _as_saved(self._record(history))
        if target.exists():
            _ensure_not_open_elsewhere(target)
        _remove_stale_temps(target)
        _note_save_folder(self.recovery_dir, target.parent)
        tmp = _build_empty(target, target.stem)
        try:
            built = ProjectFile.open(tmp, compress=self.file.compress)
            try:
                built.save(record)
            finally:
                built.close()
            _publish_file(tmp, target, replace=True)
        finally:
            tmp.unlink(missing_ok=True)
        new_file = ProjectFile.open(target, compress=self.file.compress)
        with self._switch:  # autosaves wait only for the switch, not for the copy above
            old_file, old_path, old_writer = self.file, self.path, self.autosave
            self.file, self.path, self._title = new_file, target, target.stem
            self.autosave = AutosaveWriter(new_file, _pointer_for(self.recovery_dir, target))
            _retire(old_file, old_path, old_writer)

    def close(self, *, discard_unsaved: bool = False) -> None:
        """Close the project and release its lock.

        Args:
            discard_unsaved: the user chose not to keep unsaved changes: delete the autosave
                (and, for an untitled project, its recovery file). Otherwise any autosaved
                work stays, to be offered again on the next start.
        """
        if self.file.closed:
            return
        if discard_unsaved:
            _retire(self.file, self.path, self.autosave)
            return
        keep = self.file.has(AUTOSAVE)
        if self.path is None and not keep:
            _retire(self.file, None, self.autosave)  # nothing to recover: no leftover file
            return
        if not keep:
            self.autosave.saved()
        self.file.close()

    def __enter__(self) -> ProjectSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, history: HistoryRecord | UndoHistory) -> HistoryRecord:
        if isinstance(history, HistoryRecord):
            return history
        return self.snapshots.record_history(history)


def _as_saved(record: HistoryRecord) -> HistoryRecord:
    if record.saved == record.current:
        return record
    return HistoryRecord(record.snapshots, record.current, record.current)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _ensure_not_open_elsewhere(target: Path) -> None:
    try:
        con = _connect(target)
        try:
            con.execute("PRAGMA application_id").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc).lower() or "busy" in str(exc).lower():
            raise ProjectFileError(
                f"{target.name} is open in another SA3 Studio window; close it there or save "
                "under another name."
            ) from exc
    except sqlite3.Error:
        pass  # not a database, or damaged: it will simply be replaced


def _retire(file: ProjectFile, path: Path | None, writer: AutosaveWriter) -> None:
    """Drop the autosaved work of a file the session leaves, then close it."""
    if path is None:
        location = file.path
        file.close()
        _remove_project_file(location)
        return
    try:
        writer.discard()
    finally:
        file.close()


def _remove_project_file(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        p.unlink(missing_ok=True)


def _recovery_dir(folder: str | os.PathLike[str] | None) -> Path:
    return default_recovery_dir() if folder is None else Path(folder)


def is_writable(path: str | os.PathLike[str]) -> bool:
    """True when this user may write the project file and its folder (SQLite needs both)."""
    p = Path(path)
    return os.access(p, os.W_OK) and os.access(p.parent, os.W_OK)


def read_saved_read_only(path: str | os.PathLike[str]) -> StoredState:
    """The saved state of a project this user cannot write (see
    :meth:`ProjectFile.open_read_only`); the file is closed again before this returns.

    Raises:
        ProjectFileError: the file cannot be read, is damaged, or holds no saved state.
    """
    with ProjectFile.open_read_only(path) as file:
        state = file.read(SAVED)
    if state is None:
        raise ProjectFileError(
            f"'{Path(path).name}' holds no saved project. It may come from a save that did "
            "not finish; open an older copy or the original audio."
        )
    return state


def find_recoverable(recovery_dir: str | os.PathLike[str] | None = None) -> list[Recoverable]:
    """Unsaved work that sessions which did not close cleanly left behind, newest first.

    Files in use by a running SA3 Studio are skipped; leftovers with nothing to recover are
    tidied away. Damaged recovery files are left in place (and logged), never deleted.

    Args:
        recovery_dir: the recovery folder (default :func:`default_recovery_dir`).
    """
    folder = _recovery_dir(recovery_dir)
    if not folder.is_dir():
        return []
    clean_leftovers(folder)
    found: list[Recoverable] = []
    for file in sorted(folder.glob(f"*{PROJECT_SUFFIX}")):
        if file.name.startswith("."):
            continue  # a temporary file of a creation that did not finish
        item = _probe(file, None, None)
        if item is not None:
            found.append(item)
    for pointer in sorted(folder.glob(f"*{_POINTER_SUFFIX}")):
        try:
            project = Path(json.loads(pointer.read_text(encoding="utf-8"))["project"])
        except (OSError, ValueError, KeyError, TypeError):
            _log.warning("ignoring unreadable recovery pointer %s", pointer)
            continue
        if not project.exists():
            pointer.unlink(missing_ok=True)  # the project is gone: nothing to recover into
            continue
        item = _probe(project, project, pointer)
        if item is not None:
            found.append(item)
    found.sort(key=lambda r: r.written_at, reverse=True)
    return found


def _probe(file: Path, project: Path | None, pointer: Path | None) -> Recoverable | None:
    try:
        opened = ProjectFile.open(file)
    except ProjectFileError as exc:
        if "already open" not in str(exc):
            _log.warning("cannot check %s for recoverable work: %s", file, exc)
        return None
    try:
        info = opened.slot_info(AUTOSAVE)
        title = project.stem if project is not None else (opened.meta("title") or "Untitled")
    finally:
        opened.close()
    if info is None:
        if pointer is not None:
            pointer.unlink(missing_ok=True)
        else:
            _remove_project_file(file)  # an untitled session that never committed anything
        return None
    return Recoverable(file, project, title, info.written_at, info.label, info.steps, pointer)


def discard_recoverable(item: Recoverable) -> None:
    """Throw away recoverable work the user does not want.

    Raises:
        ProjectFileError: the file is in use by a running SA3 Studio, or cannot be written.
    """
    if item.project_path is None:
        opened = ProjectFile.open(item.file)  # refuses a file a running session holds
        opened.close()
        _remove_project_file(item.file)
        return
    with ProjectFile.open(item.file) as opened:
        opened.clear(AUTOSAVE)
    if item.pointer is not None:
        item.pointer.unlink(missing_ok=True)
