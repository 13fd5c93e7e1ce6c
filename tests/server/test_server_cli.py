"""The command line's ``--server``: the same commands, run on the local Ray Serve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from server_helpers import LiveServer, free_port

from sa3_studio.cli import main

SR = 44100


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The local runs compute with one thread, like each replica (same float32 sums)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SA3_STUDIO_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_on_the_server(capsys: pytest.CaptureFixture[str], server: LiveServer) -> None:
    code, out, err = _run(
        capsys, "models", "list", "--server", server.url, "--token-file", str(server.token_file)
    )
    assert code == 0, err
    assert f"Server: {server.url}" in out
    assert "tiny44k" in out
    assert "post-trained" in out
    assert "LoRAs: style" in out


def test_generate_on_the_server_writes_what_the_local_engine_writes(
    capsys: pytest.CaptureFixture[str], server: LiveServer, tmp_path: Path, one_thread: None
) -> None:
    common = ["generate", "-p", "glass", "--duration", "1.5", "--seed", "8", "--steps", "3"]
    remote_out = tmp_path / "remote.wav"
    code, out, err = _run(
        capsys, *common, "--server", server.url, "--token-file", str(server.token_file),
        "--model", "tiny44k", "-o", str(remote_out),
    )  # fmt: skip
    assert code == 0, err
    assert "Seed: 8" in out
    local_out = tmp_path / "local.wav"
    code, _, err = _run(
        capsys, *common, "--model", str(server.model_dir), "--dtype", "float32",  # as served
        "-o", str(local_out),
    )  # fmt: skip
    assert code == 0, err
    remote_audio, remote_rate = sf.read(remote_out, dtype="float32")
    local_audio, local_rate = sf.read(local_out, dtype="float32")
    assert remote_rate == local_rate == SR
    assert remote_audio.shape == local_audio.shape == (round(1.5 * SR), 2)
    assert np.array_equal(remote_audio, local_audio)


def test_inpaint_on_the_server_with_a_lora_by_name(
    capsys: pytest.CaptureFixture[str],
    server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SA3_STUDIO_TOKEN", server.token)
    rng = np.random.default_rng(3)
    source = (0.2 * rng.standard_normal((2 * SR, 2))).astype(np.float32)
    src = tmp_path / "song.wav"
    sf.write(src, source, SR, subtype="FLOAT")
    out_path = tmp_path / "fixed.wav"
    code, _, err = _run(
        capsys, "inpaint", "--server", server.url, "--inpaint-audio", str(src),
        "--inpaint-start", "0.5", "--inpaint-end", "1.0", "-p", "fill", "--seed", "2",
        "--steps", "2", "--lora", "style:0.7", "-o", str(out_path),
    )  # fmt: skip
    assert code == 0, err
    audio, rate = sf.read(out_path, dtype="float32")
    assert rate == SR
    assert audio.shape == source.shape
    # Outside the region (and its crossfade) every sample is the source's.
    assert np.array_equal(audio[: int(0.45 * SR)], source[: int(0.45 * SR)])
    assert np.array_equal(audio[int(1.05 * SR) :], source[int(1.05 * SR) :])
    assert not np.array_equal(
        audio[int(0.6 * SR) : int(0.9 * SR)], source[int(0.6 * SR) : int(0.9 * SR)]
    )


def test_server_without_a_token_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], server: LiveServer
) -> None:
    code, _, err = _run(capsys, "generate", "--server", server.url, "-p", "x", "--duration", "1")
    assert code == 2
    assert "needs the server's token" in err


def test_an_empty_token_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = _run(capsys, "models", "list", "--server", url, "--token-file", "/dev/null")
    assert code == 2
    assert "empty" in err  # /dev/null holds no token
    code, _, err = _run(capsys, "generate", "--server", url, "-p", "x", "--duration", "1")
    assert code == 2
    assert "needs the server's token" in err


def test_unreachable_server_with_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SA3_STUDIO_TOKEN", "x" * 32)
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = _run(capsys, "generate", "--server", url, "-p", "x", "--duration", "1")
    assert code == 2
    assert "Cannot reach the SA3 Studio server" in err
