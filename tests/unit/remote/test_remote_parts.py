"""The remote engine's small parts, without a server: the wire format, addresses, the token
file, error scrubbing and the bounded stores."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sa3_studio.errors import Sa3Error
from sa3_studio.remote.client import RemoteError, ServerAddress, read_token
from sa3_studio.remote.wire import Event, decode_wav, encode_wav, source_id
from sa3_studio.server.cli import _autoscale, ensure_token
from sa3_studio.server.config import ServerSettings, token_digest
from sa3_studio.server.errors import scrub
from sa3_studio.server.store import LruStore


def test_float_wav_round_trips_exactly_and_soundfile_reads_it() -> None:
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 1001)).astype(np.float32)
    audio[0, 0] = np.float32(1e-38)  # denormal-adjacent values survive too
    blob = encode_wav(audio, 44100)
    back, rate = decode_wav(blob)
    assert rate == 44100
    assert back.dtype == np.float32
    assert np.array_equal(back, audio)
    data, sr = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    assert sr == 44100
    assert np.array_equal(data.T, audio)


def test_decode_wav_refuses_pcm() -> None:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((10, 2)), 44100, format="WAV", subtype="PCM_16")
    with pytest.raises(ValueError, match="32-bit float"):
        decode_wav(buf.getvalue())


def test_source_id_depends_on_samples_shape_and_rate() -> None:
    a = np.zeros((2, 100), np.float32)
    b = a.copy()
    b[1, 99] = 1e-7
    assert source_id(a, 44100) == source_id(a.copy(), 44100)
    assert len({source_id(a, 44100), source_id(b, 44100), source_id(a, 48000)}) == 3
    assert source_id(a, 44100) != source_id(a.reshape(1, 200), 44100)


def test_events_round_trip() -> None:
    line = Event("step", {"done": 3, "total": 8}).to_line()
    assert line.endswith(b"\n")
    ev = Event.from_line(line)
    assert (ev.kind, ev.data["done"], ev.data["total"]) == ("step", 3, 8)
    with pytest.raises(ValueError):
        Event.from_line(b'{"no": "event"}')


def test_server_addresses() -> None:
    a = ServerAddress.parse("gpu-box")
    assert (a.scheme, a.host, a.port, a.url) == ("http", "gpu-box", 8000, "http://gpu-box:8000")
    assert ServerAddress.parse("https://h.example/v1/").url == "https://h.example:443"
    for bad in ("ftp://h", "http://h:1/?token=abc", "http://user:pw@h:1"):
        with pytest.raises(RemoteError) as info:
            ServerAddress.parse(bad)
        assert info.value.code == "bad_url"


def test_read_token_from_file_or_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SA3_STUDIO_TOKEN", " from-env ")
    assert read_token(None) == "from-env"
    f = tmp_path / "t"
    f.write_text("from-file\n")
    assert read_token(f) == "from-file"
    with pytest.raises(RemoteError, match="Cannot read the server token"):
        read_token(tmp_path / "missing")


def test_the_token_file_is_made_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "server-token"
    token, created = ensure_token(path)
    assert created
    assert len(token) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    again, created = ensure_token(path)
    assert (again, created) == (token, False)
    os.chmod(path, 0o644)
    with pytest.raises(Sa3Error, match="chmod 600"):
        ensure_token(path)


def test_token_check_is_by_digest() -> None:
    settings = ServerSettings(models={}, token_sha256=token_digest("s3cret-token"))
    assert settings.token_ok("s3cret-token")
    assert not settings.token_ok("s3cret-tokeN")
    assert not settings.token_ok("")
    assert ServerSettings(models={}).token_ok("anything")  # --insecure-no-token


def test_autoscale_option() -> None:
    assert _autoscale("1:4") == (1, 4)
    assert _autoscale(None) is None
    for bad in ("4", "4:1", "a:b", "0:0"):
        with pytest.raises(Sa3Error, match="MIN:MAX"):
            _autoscale(bad)


def test_scrub_removes_server_paths() -> None:
    text = "There is no LoRA file at /srv/sa3/loras/drums.safetensors; check it (3/8 done)."
    assert scrub(text) == "There is no LoRA file at drums.safetensors; check it (3/8 done)."
    assert "/home/me" not in scrub("model at /home/me/m/x failed", ("/home/me",))


def test_lru_store_is_bounded_by_count_and_bytes() -> None:
    store: LruStore[str] = LruStore(max_items=2, max_bytes=100)
    store.put("a", "A", 10)
    store.put("b", "B", 10)
    assert store.get("a") == "A"  # a is now the most recent
    store.put("c", "C", 10)
    assert "b" not in store
    assert ("a" in store, "c" in store) == (True, True)
    store.put("d", "D", 95)  # over the byte bound: the older ones go
    assert len(store) == 1
    assert store.nbytes == 95
    assert not store.put("huge", "H", 101)
    assert "d" in store
