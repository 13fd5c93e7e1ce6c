"""The ``sa3-studio`` commands, run in-process on the tiny 44.1 kHz synthetic model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from sa3_studio.audio.true_peak import true_peak_dbtp
from sa3_studio.cli import CLI_SAMPLERS, main
from sa3_studio.engine import registry
from sa3_studio.engine.api import SAMPLERS
from sa3_studio.engine.synthetic import make_random_model

SR = 44100
MUSIC = "TrackType: Music, VocalType: Instrumental, "


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, vectors_dir: Path) -> Path:
    return make_random_model(
        tmp_path_factory.mktemp("cli") / "tiny44k",
        preset="tiny44k",
        seed=5,
        text_encoder_src=vectors_dir / "t5gemma_tiny",
    )


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real model folders or hub cache: every search sees only what a test puts there."""
    empty = tmp_path / "empty-hub"
    empty.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(empty))
    monkeypatch.delenv("SA3_STUDIO_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(registry, "app_models_dir", lambda: tmp_path / "no-app-folder")
    monkeypatch.chdir(tmp_path)


def _tone(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([x, 0.5 * x], axis=1).astype(np.float32)  # (frames, 2) for soundfile


def _write_source(path: Path, seconds: float, rate: int = SR) -> np.ndarray:
    sf.write(str(path), _tone(seconds, rate), rate, subtype="PCM_16")
    data, _ = sf.read(str(path), dtype="float32")
    return data  # (frames, 2), exactly what the file holds


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _comment(path: Path) -> str:
    with sf.SoundFile(str(path)) as f:
        return str(f.comment)


# --------------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------------


def test_generate_writes_a_tagged_file_and_prints_the_seed(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pad.wav"
    code, stdout, _ = _run(
        capsys, "generate", "--model", str(model_dir), "-p", "warm pad",
        "--duration", "3", "--seed", "17", "-o", str(out),
    )  # fmt: skip
    assert code == 0
    assert f"Prompt: '{MUSIC}warm pad'" in stdout
    assert "Seed: 17" in stdout
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (SR, 2, 3 * SR)
    comment = _comment(out)
    assert f"prompt: {MUSIC}warm pad" in comment
    assert "seed: 17" in comment
    assert "model: tiny44k" in comment
    audio, _ = sf.read(str(out), dtype="float32")
    assert np.abs(audio).max() > 0


def test_random_seed_is_printed_and_tagged(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "x.flac"
    code, stdout, _ = _run(
        capsys, "generate", "--model", str(model_dir), "-p", "x", "--duration", "1",
        "--no-prefix", "-o", str(out),
    )  # fmt: skip
    assert code == 0
    match = re.search(r"Seed: (\d+)", stdout)
    assert match is not None
    assert f"seed: {match.group(1)}" in _comment(out)
    assert "prompt: x\n" in _comment(out) + "\n"
    assert sf.info(str(out)).subtype == "PCM_24"


def test_sampler_option_reaches_the_engine(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    assert CLI_SAMPLERS == SAMPLERS  # spelled out in the CLI so that --help needs no numpy
    outs = {}
    for sampler in ("pingpong", "rk4"):
        out = tmp_path / f"{sampler}.wav"
        code, _, _ = _run(
            capsys, "generate", "--model", str(model_dir), "-p", "x", "--duration", "1",
            "--steps", "2", "--seed", "3", "--sampler", sampler, "-o", str(out),
        )  # fmt: skip
        assert code == 0
        outs[sampler], _ = sf.read(str(out), dtype="float32")
    assert np.abs(outs["pingpong"] - outs["rk4"]).max() > 1e-4
    with pytest.raises(SystemExit):
        main(["generate", "-p", "x", "--sampler", "heun"])
    assert "invalid choice: 'heun'" in capsys.readouterr().err


def test_several_takes_are_numbered(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    code, stdout, _ = _run(
        capsys, "generate", "--model", str(model_dir), "-p", "x", "--duration", "1",
        "--batch", "3", "--seed", "2", "-o", str(tmp_path / "out.wav"),
    )  # fmt: skip
    assert code == 0
    files = [tmp_path / f"out_{i}.wav" for i in (1, 2, 3)]
    assert all(f.is_file() for f in files)
    assert not (tmp_path / "out.wav").exists()
    takes = [sf.read(str(f), dtype="float32")[0] for f in files]
    assert not np.array_equal(takes[0], takes[1])
    assert "take 2 of 3" in _comment(files[1])
    assert stdout.count("Wrote ") == 3


def test_default_output_name_carries_the_seed(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    code, _, _ = _run(
        capsys, "generate", "--model", str(model_dir), "-p", "x", "--duration", "1",
        "--seed", "9",
    )  # fmt: skip
    assert code == 0
    assert (tmp_path / "generate_9.wav").is_file()


# --------------------------------------------------------------------------------------------
# inpaint / continue / vary
# --------------------------------------------------------------------------------------------


def _outside(frames: int, rate: int, regions: list[tuple[float, float]]) -> np.ndarray:
    keep = np.ones(frames, dtype=bool)
    for s, e in regions:
        keep[round(s * rate) : round(e * rate)] = False
    return keep


@pytest.mark.parametrize("rate", [SR, 48000])
def test_inpaint_keeps_every_sample_outside_the_regions(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path, rate: int
) -> None:
    source = _write_source(tmp_path / "song.wav", 6.0, rate)
    out = tmp_path / "fixed.wav"
    code, _, _ = _run(
        capsys, "inpaint", "--model", str(model_dir), "-p", "drum fill",
        "--inpaint-audio", str(tmp_path / "song.wav"),
        "--inpaint-start", "1.0", "--inpaint-end", "2.0",
        "--inpaint-start", "4.0", "--inpaint-end", "4.5",
        "--seed", "4", "-o", str(out),
    )  # fmt: skip
    assert code == 0
    result, out_rate = sf.read(str(out), dtype="float32")
    assert out_rate == rate
    assert result.shape == source.shape
    keep = _outside(len(source), rate, [(1.0, 2.0), (4.0, 4.5)])
    np.testing.assert_array_equal(result[keep], source[keep])
    inside = ~keep
    assert np.abs(result[inside] - source[inside]).mean() > 1e-3
    # The seams are crossfaded: the first regenerated sample still equals the source closely.
    first = round(1.0 * rate)
    assert np.abs(result[first] - source[first]).max() < 0.05


def test_inpaint_raw_writes_the_whole_model_output(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    source = _write_source(tmp_path / "song.wav", 4.0)
    out = tmp_path / "raw.wav"
    code, _, _ = _run(
        capsys, "inpaint", "--model", str(model_dir), "-p", "x", "--raw",
        "--inpaint-audio", str(tmp_path / "song.wav"),
        "--inpaint-start", "1", "--inpaint-end", "2", "--seed", "4", "-o", str(out),
    )  # fmt: skip
    assert code == 0
    result, rate = sf.read(str(out), dtype="float32")
    assert rate == SR
    assert result.shape == source.shape
    keep = _outside(len(source), SR, [(1.0, 2.0)])
    # The model regenerates everything; its kept region is its own reconstruction.
    assert not np.array_equal(result[keep], source[keep])


def test_continue_keeps_the_source_and_extends_it(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    source = _write_source(tmp_path / "intro.wav", 3.0)
    out = tmp_path / "longer.wav"
    code, stdout, _ = _run(
        capsys, "continue", "--model", str(model_dir), "-p", "x",
        "--inpaint-audio", str(tmp_path / "intro.wav"), "--duration", "5",
        "--seed", "1", "-o", str(out),
    )  # fmt: skip
    assert code == 0
    assert "Window 1: 0.000-5.000 s (5.000 s) regenerating extension 3.000-5.000 s" in stdout
    result, _ = sf.read(str(out), dtype="float32")
    assert result.shape == (5 * SR, 2)
    # The whole source is kept, its last samples included; the new part starts right after.
    np.testing.assert_array_equal(result[: 3 * SR], source)
    assert np.abs(result[3 * SR : 4 * SR]).max() > 1e-3


def test_continue_on_a_file_longer_than_duration_adds_that_much(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    source = _write_source(tmp_path / "song.wav", 12.0)
    out = tmp_path / "longer.wav"
    code, stdout, err = _run(
        capsys, "continue", "--model", str(model_dir), "-p", "x", "--steps", "2",
        "--inpaint-audio", str(tmp_path / "song.wav"), "--duration", "2", "--context", "8",
        "--seed", "1", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert "already 12.000 s long, longer than --duration 2; adding 2 s" in err
    # An 8 s context (7.988 s: whole latents): the window holds the song's end and the new part.
    assert "Window 1: 6.012-14.000 s (7.988 s) regenerating extension 12.000-14.000 s" in stdout
    result, _ = sf.read(str(out), dtype="float32")
    assert result.shape == (14 * SR, 2)
    np.testing.assert_array_equal(result[: 12 * SR], source)
    code, _, err = _run(
        capsys, "continue", "--model", str(model_dir), "-p", "x",
        "--inpaint-audio", str(tmp_path / "song.wav"),
    )  # fmt: skip
    assert code == 2
    assert "`continue` needs --add SECONDS" in err


def test_vary_writes_a_variation_at_the_source_rate(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    _write_source(tmp_path / "idea.wav", 2.0, 22050)
    out = tmp_path / "var.wav"
    code, stdout, err = _run(
        capsys, "vary", "--model", str(model_dir), "-p", "x", "--init-audio",
        str(tmp_path / "idea.wav"), "--init-noise-level", "0.5", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert "Window 1: 0.000-2.000 s (2.000 s) varying r1 0.000-2.000 s" in stdout
    info = sf.info(str(out))
    assert (info.samplerate, info.frames, info.subtype) == (22050, 2 * 22050, "PCM_16")


def test_lora_option_applies_a_lora(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    lora = tmp_path / "style.safetensors"
    gen = torch.Generator().manual_seed(0)
    base = "model.transformer.layers.0.ff.ff.2.parametrizations.weight.0."
    tensors = {
        base + "lora_A": (torch.randn(2, 512, generator=gen) * 0.3).half(),
        base + "lora_B": (torch.randn(128, 2, generator=gen) * 0.3).half(),
    }
    save_file(tensors, str(lora), metadata={"lora_config": json.dumps({"rank": 2, "alpha": 4})})
    outs = {}
    for name, extra in (
        ("plain", []),
        ("zero", ["--lora", f"{lora}:0"]),
        ("one", ["--lora", str(lora)]),
    ):
        path = tmp_path / f"{name}.wav"
        code, _, err = _run(
            capsys, "generate", "--model", str(model_dir), "-p", "x", "--duration", "1",
            "--seed", "3", "-o", str(path), *extra,
        )  # fmt: skip
        assert code == 0, err
        outs[name] = sf.read(str(path), dtype="float32")[0]
    np.testing.assert_array_equal(outs["zero"], outs["plain"])
    assert not np.array_equal(outs["one"], outs["plain"])


# --------------------------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--inpaint-start", "1", "--inpaint-end", "2", "--inpaint-start", "3"],
         "2 --inpaint-start but 1 --inpaint-end were given"),
        (["--inpaint-start", "2", "--inpaint-end", "1"],
         "Region r1 (2.000-1.000 s) is empty; its end must come after its start"),
        (["--inpaint-start", "3", "--inpaint-end", "9"],
         "Region r1 (3.000-9.000 s) ends after the end of the source (4.000 s); end it "
         "there, or extend the source instead"),
        (["--inpaint-start", "1", "--inpaint-end", "2", "-o", "x.mp4"],
         "the output must end in .wav, .flac, .ogg or .mp3"),
        (["--inpaint-start", "1", "--inpaint-end", "2", "--batch", "0"],
         "--batch must be at least 1"),
        (["--inpaint-start", "1", "--inpaint-end", "2", "--lora", "nothere.safetensors:0.5"],
         "There is no LoRA file at nothere.safetensors"),
    ],
)  # fmt: skip
def test_bad_inpaint_arguments_get_a_sentence(
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
    tmp_path: Path,
    extra: list[str],
    message: str,
) -> None:
    _write_source(tmp_path / "song.wav", 4.0)
    code, stdout, err = _run(
        capsys, "inpaint", "--model", str(model_dir), "-p", "x",
        "--inpaint-audio", str(tmp_path / "song.wav"), *extra,
    )  # fmt: skip
    assert code == 2
    assert message in err
    assert err.startswith("sa3-studio: ")
    assert "Wrote" not in stdout


def test_missing_input_and_model_get_a_sentence(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    code, _, err = _run(
        capsys, "vary", "--model", str(model_dir), "-p", "x", "--init-audio", "nope.wav"
    )
    assert code == 2
    assert "the file does not exist" in err
    code, _, err = _run(capsys, "generate", "--model", "small-music", "-p", "x")
    assert code == 2
    assert "was not found" in err
    assert "sa3-studio models download small-music" in err  # never downloaded implicitly
    code, _, err = _run(capsys, "generate", "-p", "x")
    assert code == 2
    assert "none is installed" in err
    code, _, err = _run(
        capsys, "generate", "--model", str(model_dir), "-p", "x", "--duration", "500"
    )
    assert code == 2
    assert "500.000 s is longer than this model can make in one pass (120.001 s)" in err


def test_argparse_errors_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inpaint", "-p", "x"])
    assert info.value.code == 2
    assert "--inpaint-audio" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


def test_models_list_and_verify_a_folder(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    shutil.copytree(model_dir, shelf / "tiny44k")
    broken = shelf / "half"
    broken.mkdir()
    shutil.copy(model_dir / "model_config.json", broken / "model_config.json")
    code, stdout, _ = _run(capsys, "models", "list", "--dir", str(shelf))
    assert code == 0
    assert f"{shelf} (SA3_STUDIO_MODELS)" in stdout
    lines = stdout.splitlines()
    tiny = next(line for line in lines if line.startswith("tiny44k"))
    assert "complete" in tiny
    assert "MB" in tiny
    half = next(line for line in lines if line.startswith("half"))
    assert "INCOMPLETE" in half
    assert any("missing: model.safetensors" in line for line in lines)

    code, stdout, _ = _run(capsys, "models", "verify", str(shelf / "tiny44k"))
    assert code == 0
    assert "tiny44k: OK" in stdout
    code, stdout, _ = _run(capsys, "models", "verify", "half", "--dir", str(shelf))
    assert code == 1
    assert "model.safetensors is missing" in stdout


def test_models_list_with_nothing_installed(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = _run(capsys, "models", "list")
    assert code == 0
    assert "No models found" in stdout


def test_models_download_refuses_offline_and_unknown_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = _run(capsys, "models", "download", "small-music-base", "--dir", str(tmp_path))
    assert code == 2
    assert "HF_HUB_OFFLINE" in err
    code, _, err = _run(capsys, "models", "download", "huge-music")
    assert code == 2
    assert "not an official Stable Audio 3 model" in err


def test_commands_do_not_import_qt() -> None:
    code = (
        "import sys\n"
        "from sa3_studio import cli, commands\n"
        "import sa3_studio.engine.pipeline, sa3_studio.audio.files\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'shiboken'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --------------------------------------------------------------------------------------------
# Any source: long, other rates, mono, 24-bit, surround; the source's format comes back
# --------------------------------------------------------------------------------------------


def _write(path: Path, seconds: float, rate: int, channels: int, subtype: str) -> np.ndarray:
    rng = np.random.default_rng(rate + channels)
    t = np.arange(round(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.02 * rng.standard_normal((t.size, channels))
    sf.write(str(path), x.astype(np.float32), rate, subtype=subtype)
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return data  # (frames, channels), exactly what the file holds


def _inpaint(capsys: pytest.CaptureFixture[str], model_dir: Path, src: Path, out: Path,
             start: str, end: str, *extra: str) -> tuple[int, str, str]:  # fmt: skip
    return _run(
        capsys, "inpaint", "--model", str(model_dir), "-p", "fill", "--steps", "2",
        "--inpaint-audio", str(src), "--inpaint-start", start, "--inpaint-end", end,
        "--seed", "7", "-o", str(out), *extra,
    )  # fmt: skip


def test_a_five_minute_song_goes_through_a_window_around_its_region(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    source = _write(tmp_path / "song.wav", 300.0, SR, 2, "PCM_16")
    out = tmp_path / "fixed.wav"
    code, stdout, err = _inpaint(capsys, model_dir, tmp_path / "song.wav", out, "150", "152")
    assert code == 0, err
    # The model makes at most 120 s: a 120 s window centred on the region is sent.
    assert "Window 1: 91.022-211.023 s (120.001 s) regenerating r1 150.000-152.000 s" in stdout
    # The file says how it was made: the windows too.
    assert "window 1: 91.022-211.023 s" in _comment(out)
    result, rate = sf.read(str(out), dtype="float32", always_2d=True)
    assert rate == SR
    assert result.shape == source.shape
    keep = _outside(len(source), SR, [(150.0, 152.0)])
    np.testing.assert_array_equal(result[keep], source[keep])
    assert np.abs(result[~keep] - source[~keep]).mean() > 1e-3


def test_a_48k_mono_24_bit_wav_comes_back_as_it_was_outside_the_region(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    rate = 48000
    source = _write(tmp_path / "voice.wav", 5.0, rate, 1, "PCM_24")
    out = tmp_path / "fixed.wav"
    code, stdout, err = _inpaint(capsys, model_dir, tmp_path / "voice.wav", out, "1.5", "2.5")
    assert code == 0, err
    assert "voice.wav: 5.000 s, 48000 Hz, 1 channel, WAV PCM_24" in err
    assert "(5.000 s, 48000 Hz, 1 channel, WAV 24-bit)" in stdout
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        rate, 1, "PCM_24", 5 * rate,
    )  # fmt: skip
    result, _ = sf.read(str(out), dtype="float32", always_2d=True)
    keep = _outside(len(source), rate, [(1.5, 2.5)])
    np.testing.assert_array_equal(result[keep], source[keep])
    assert np.abs(result[~keep] - source[~keep]).mean() > 1e-3


def test_a_96k_file_keeps_its_rate_and_exact_length(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    rate = 96000
    source = _write(tmp_path / "hi.flac", 4.321, rate, 2, "PCM_24")
    out = tmp_path / "hi_fixed.flac"
    code, _, err = _inpaint(capsys, model_dir, tmp_path / "hi.flac", out, "1", "2.2")
    assert code == 0, err
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (rate, 2, "PCM_24")
    result, _ = sf.read(str(out), dtype="float32", always_2d=True)
    assert result.shape == source.shape  # 414816 frames, not one more or less
    keep = _outside(len(source), rate, [(1.0, 2.2)])
    np.testing.assert_array_equal(result[keep], source[keep])


def test_a_22k_mono_sound_effect_and_the_output_options(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    rate = 22050
    source = _write(tmp_path / "door.wav", 1.5, rate, 1, "PCM_16")
    out = tmp_path / "door2.wav"
    code, _, err = _inpaint(capsys, model_dir, tmp_path / "door.wav", out, "0.5", "1.0")
    assert code == 0, err
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.subtype) == (rate, 1, "PCM_16")
    result, _ = sf.read(str(out), dtype="float32", always_2d=True)
    keep = _outside(len(source), rate, [(0.5, 1.0)])
    np.testing.assert_array_equal(result[keep], source[keep])
    # --rate, --channels and another extension choose otherwise.
    other = tmp_path / "door_44k.flac"
    code, _, err = _inpaint(
        capsys, model_dir, tmp_path / "door.wav", other, "0.5", "1.0",
        "--rate", "44100", "--channels", "2",
    )  # fmt: skip
    assert code == 0, err
    assert "22050 Hz was converted to 44100 Hz (--rate)" in err
    info = sf.info(str(other))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        SR, 2, "PCM_24", round(1.5 * SR),
    )  # fmt: skip


def test_a_six_channel_file_is_refused_unless_asked_for_stereo(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    _write(tmp_path / "surround.wav", 2.0, SR, 6, "PCM_16")
    out = tmp_path / "out.wav"
    code, _, err = _inpaint(capsys, model_dir, tmp_path / "surround.wav", out, "0.5", "1")
    assert code == 2
    assert "has 6 channels, but the model makes stereo" in err
    assert "--channels 2" in err
    assert not out.exists()
    code, _, err = _inpaint(
        capsys, model_dir, tmp_path / "surround.wav", out, "0.5", "1", "--channels", "2"
    )
    assert code == 0, err
    assert "6 channels were converted to 2 (--channels)" in err
    assert sf.info(str(out)).channels == 2


def test_generate_writes_44k_stereo_float_or_the_chosen_subtype(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    chosen = ["--subtype", "PCM_16", "--channels", "1", "--rate", "48000"]
    for extra, expected in (([], ("FLOAT", SR, 2)), (chosen, ("PCM_16", 48000, 1))):
        out = tmp_path / f"new{len(extra)}.wav"
        code, stdout, err = _run(
            capsys, "generate", "--model", str(model_dir), "-p", "x", "--duration", "1.5",
            "--steps", "2", "--seed", "1", "-o", str(out), *extra,
        )  # fmt: skip
        assert code == 0, err
        assert "Window 1: 0.000-1.500 s (1.500 s) from the prompt alone" in stdout
        info = sf.info(str(out))
        assert (info.subtype, info.samplerate, info.channels) == expected
        assert info.frames == round(1.5 * expected[1])


def test_loop_regenerates_the_join_and_keeps_the_rest(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    rate = 48000
    source = _write(tmp_path / "loop.wav", 4.0, rate, 2, "PCM_24")
    out = tmp_path / "seamless.wav"
    code, stdout, err = _run(
        capsys, "loop", "--model", str(model_dir), "-p", "drum loop", "--steps", "2",
        "--audio", str(tmp_path / "loop.wav"), "--seam", "1", "--seed", "3", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert "Window 1: 4.000 s of the loop around the join of its end and its start" in stdout
    assert "New audio at the loop's end 3.500-4.000 s and its start 0.000-0.500 s" in stdout
    result, out_rate = sf.read(str(out), dtype="float32", always_2d=True)
    assert out_rate == rate
    assert result.shape == source.shape
    middle = slice(rate // 2, 4 * rate - rate // 2)
    np.testing.assert_array_equal(result[middle], source[middle])
    assert not np.array_equal(result[: rate // 2], source[: rate // 2])
    # Played as a loop, the end runs into the start like any other neighbouring samples.
    wrap = np.abs(result[0] - result[-1]).max()
    typical = np.abs(np.diff(result, axis=0)).max()
    assert wrap <= 2 * typical


def test_regions_with_their_own_prompts_get_their_own_pass_and_before_extends_the_start(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    source = _write(tmp_path / "song.wav", 6.0, SR, 2, "PCM_16")
    out = tmp_path / "two.wav"
    code, _, err = _inpaint(
        capsys, model_dir, tmp_path / "song.wav", out, "1", "2",
        "--inpaint-prompt", "snare roll", "--inpaint-prompt", "",
    )  # fmt: skip
    assert code == 2
    assert "2 --inpaint-prompt for 1 regions" in err
    code, stdout, err = _run(
        capsys, "inpaint", "--model", str(model_dir), "-p", "fill", "--steps", "2",
        "--inpaint-audio", str(tmp_path / "song.wav"), "--seed", "7", "-o", str(out),
        "--inpaint-start", "1", "--inpaint-end", "2", "--inpaint-prompt", "snare roll",
        "--inpaint-start", "4", "--inpaint-end", "5", "--inpaint-prompt", "",
    )  # fmt: skip
    assert code == 0, err
    assert "regenerating r1 1.000-2.000 s with its own prompt 'snare roll'" in stdout
    assert "Window 2: 0.000-6.000 s (6.000 s) regenerating r2 4.000-5.000 s\n" in stdout
    result, _ = sf.read(str(out), dtype="float32", always_2d=True)
    keep = _outside(len(source), SR, [(1.0, 2.0), (4.0, 5.0)])
    np.testing.assert_array_equal(result[keep], source[keep])
    # continue --before adds in front of the start; the song follows unchanged.
    code, stdout, err = _run(
        capsys, "continue", "--model", str(model_dir), "-p", "intro", "--steps", "2",
        "--inpaint-audio", str(tmp_path / "song.wav"), "--add", "1.5", "--before",
        "--seed", "1", "-o", str(tmp_path / "intro.wav"),
    )  # fmt: skip
    assert code == 0, err
    assert "regenerating extension 0.000-1.500 s" in stdout
    result, _ = sf.read(str(tmp_path / "intro.wav"), dtype="float32", always_2d=True)
    assert result.shape == (round(7.5 * SR), 2)
    np.testing.assert_array_equal(result[round(1.5 * SR) :], source)


def test_vary_on_a_file_longer_than_a_window_goes_in_parts(
    capsys: pytest.CaptureFixture[str], model_dir: Path, tmp_path: Path
) -> None:
    source = _write(tmp_path / "long.wav", 30.0, SR, 2, "PCM_16")
    out = tmp_path / "varied.wav"
    args = (
        "vary", "--model", str(model_dir), "-p", "x", "--steps", "2", "--seed", "2",
        "--init-audio", str(tmp_path / "long.wav"), "--context", "20", "-o", str(out),
    )  # fmt: skip
    code, _, err = _run(capsys, *args, "--batch", "2")
    assert code == 2
    assert "made in parts" in err
    assert not out.exists()
    code, stdout, err = _run(capsys, *args)
    assert code == 0, err
    # 30 s with a 20 s context: four parts of 7.5 s, each window hearing the one before.
    assert "varying r1.1 0.000-7.500 s" in stdout
    assert "varying r1.4 22.500-30.000 s" in stdout
    result, _ = sf.read(str(out), dtype="float32", always_2d=True)
    assert result.shape == source.shape
    # --duration varies only the start; the rest is the file's own.
    short = tmp_path / "start.wav"
    code, _, err = _run(
        capsys, "vary", "--model", str(model_dir), "-p", "x", "--steps", "2", "--seed", "2",
        "--init-audio", str(tmp_path / "long.wav"), "--duration", "4", "-o", str(short),
    )  # fmt: skip
    assert code == 0, err
    result, _ = sf.read(str(short), dtype="float32", always_2d=True)
    assert result.shape == source.shape
    np.testing.assert_array_equal(result[4 * SR :], source[4 * SR :])
    assert not np.array_equal(result[: 3 * SR], source[: 3 * SR])


# --------------------------------------------------------------------------------------------
# output level: true peaks over 0 dBTP
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loud_model_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its decoder's last mapping 4x louder (+12 dB: over 0 dBTP)."""
    loud = tmp_path_factory.mktemp("cli-loud") / "tiny44k"
    shutil.copytree(model_dir, loud)
    weights = load_file(str(loud / "model.safetensors"))
    for name in ("weight_g", "bias"):
        key = f"pretransform.model.decoder.layers.3.mapping.{name}"
        weights[key] = weights[key] * 4.0
    save_file(weights, str(loud / "model.safetensors"))
    return loud


def _peak(path: Path) -> float:
    audio, _ = sf.read(str(path), dtype="float32")
    return true_peak_dbtp(audio.T)


@pytest.mark.parametrize("option", [None, "--limit", "--gain-to-ceiling"])
def test_a_result_over_0_dbtp_is_reported_and_the_options_level_it(
    capsys: pytest.CaptureFixture[str], loud_model_dir: Path, tmp_path: Path, option: str | None
) -> None:
    out = tmp_path / "loud.wav"
    extra = [option] if option else []
    code, stdout, stderr = _run(
        capsys, "generate", "--model", str(loud_model_dir), "-p", "warm pad",
        "--duration", "3", "--seed", "17", "-o", str(out), *extra,
    )  # fmt: skip
    assert code == 0
    peak = _peak(out)
    assert "Wrote " in stdout
    if option is None:
        assert peak > 0.0
        assert f"loud.wav: true peak {peak:+.1f} dBTP, over 0 dBTP" in stderr
        assert "--limit" in stderr
        assert "--gain-to-ceiling" in stderr
        assert "The model's output peaked at +" in stderr
        # The float file keeps the audio as decoded: nothing was hard-clipped at full scale.
        written, _ = sf.read(str(out), dtype="float32")
        assert float(np.abs(written).max()) > 1.0
    elif option == "--limit":
        assert -1.5 < peak <= -0.99
        assert "over 0 dBTP" not in stderr
    else:
        assert peak == pytest.approx(-1.0, abs=0.02)
        assert "over 0 dBTP" not in stderr


def test_limit_levels_only_the_inpainted_region(
    capsys: pytest.CaptureFixture[str], loud_model_dir: Path, tmp_path: Path
) -> None:
    source = _write_source(tmp_path / "song.wav", 4.0)
    out = tmp_path / "fixed.wav"
    code, _, _ = _run(
        capsys, "inpaint", "--model", str(loud_model_dir), "-p", "drum fill",
        "--inpaint-audio", str(tmp_path / "song.wav"),
        "--inpaint-start", "1.0", "--inpaint-end", "3.0",
        "--seed", "4", "--limit", "-o", str(out),
    )  # fmt: skip
    assert code == 0
    result, _ = sf.read(str(out), dtype="float32")
    keep = _outside(len(source), SR, [(1.0, 3.0)])
    np.testing.assert_array_equal(result[keep], source[keep])
    fade = round(0.025 * SR)
    body = result[SR + fade : 3 * SR - fade]
    assert -1.5 < true_peak_dbtp(body.T) <= -0.99
