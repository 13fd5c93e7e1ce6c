"""Model discovery, verification, safetensors header checks and download error mapping.

Everything runs on temporary folders shaped like model folders and the Hugging Face cache; the
download tests inject a downloader function, so nothing touches the network.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from huggingface_hub import errors as hf_errors
from safetensors.numpy import save_file

from sa3_studio.engine import registry
from sa3_studio.engine.api import ModelInfo
from sa3_studio.engine.registry import (
    OFFICIAL_MODELS,
    TEXT_ENCODER_DIR,
    discover,
    download,
    guess_model_name,
    hf_cache_dir,
    inspect_folder,
    read_safetensors_header,
    resolve,
    resolve_info,
    search_locations,
    user_models_dir,
    verify,
)
from sa3_studio.errors import Sa3Error, WeightsError

SMALL_REPO = "stabilityai/stable-audio-3-small-music"


@pytest.fixture(autouse=True)
def _no_app_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Models a developer keeps in the checkout's models/ folder stay out of these tests."""
    monkeypatch.setattr(registry, "app_models_dir", lambda: tmp_path / "no-app-folder")


# ------------------------------------------------------------------ helpers: folders on disk


def _sa3_weights(path: Path) -> None:
    save_file(
        {
            "model.model.proj.weight": np.ones((4, 4), np.float32),
            "pretransform.model.encoder.w": np.zeros((3,), np.float32),
            "pretransform.model.bottleneck.noise_scaling_factor": np.zeros((1, 0, 1), np.float32),
            "conditioner.conditioners.prompt.padding_embedding": np.ones((2,), np.float32),
        },
        str(path),
    )


def _same_weights(path: Path) -> None:
    save_file(
        {
            "encoder.w": np.ones((2, 2), np.float32),
            "decoder.w": np.ones((2, 2), np.float32),
            "bottleneck.bias": np.zeros((1, 2, 1), np.float32),
        },
        str(path),
    )


def make_sa3_folder(
    folder: Path, vectors: Path, config: str = "small_music", text_encoder: bool = True
) -> Path:
    """A full-model folder with the released config layout and small stand-in files."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(vectors / "keys" / f"{config}.model_config.json", folder / "model_config.json")
    _sa3_weights(folder / "model.safetensors")
    if text_encoder:
        enc = folder / TEXT_ENCODER_DIR
        enc.mkdir(exist_ok=True)
        (enc / "config.json").write_text('{"model_type": "t5gemma"}')
        (enc / "tokenizer.json").write_text('{"version": "1.0"}')
        (enc / "tokenizer_config.json").write_text('{"pad_token": "<pad>"}')
        save_file(
            {"model.encoder.norm.weight": np.ones((4,), np.float32)}, str(enc / "model.safetensors")
        )
    return folder


def make_same_folder(folder: Path, vectors: Path, config: str = "same_s") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(vectors / "keys" / f"{config}.model_config.json", folder / "model_config.json")
    _same_weights(folder / "model.safetensors")
    return folder


def make_hf_cache_repo(hub: Path, repo_id: str, source: Path, rev: str = "abc123") -> Path:
    """Lay ``source``'s files out as the hub cache does: blobs + symlinked snapshot files."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / rev
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(rev)
    for f in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = f.relative_to(source)
        blob = repo / "blobs" / f"{abs(hash((rev, str(rel)))):x}"
        shutil.copy(f, blob)
        link = snapshot / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def env_for(hub: Path, *models_dirs: Path) -> dict[str, str]:
    env = {"HF_HUB_CACHE": str(hub), "XDG_DATA_HOME": str(hub.parent / "xdg-data")}
    if models_dirs:
        env["SA3_STUDIO_MODELS"] = os.pathsep.join(str(p) for p in models_dirs)
    return env


# ------------------------------------------------------------------ official table


def test_official_table() -> None:
    assert list(OFFICIAL_MODELS) == [
        "small-music",
        "small-music-base",
        "small-sfx",
        "small-sfx-base",
        "medium",
        "medium-base",
        "same-s",
        "same-l",
    ]
    small = OFFICIAL_MODELS["small-music"]
    assert small.repo_id == SMALL_REPO
    assert [m.name for m in OFFICIAL_MODELS.values() if m.gated] == [
        "small-music",
        "small-sfx",
        "medium",
    ]
    assert small.max_seconds == pytest.approx(120.0, abs=0.01)
    assert OFFICIAL_MODELS["medium"].max_seconds == pytest.approx(380.44, abs=0.01)
    assert "t5gemma-b-b-ul2/tokenizer.json" in small.files
    assert OFFICIAL_MODELS["same-l"].files == ("model_config.json", "model.safetensors")
    assert OFFICIAL_MODELS["same-l"].repo_id == "stabilityai/SAME-L"
    assert small.url == "https://huggingface.co/stabilityai/stable-audio-3-small-music"


# ------------------------------------------------------------------ safetensors header


def test_header_of_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(
        {"a.w": np.ones((2, 3), np.float32), "b.w": np.zeros((4,), np.float16)},
        str(path),
        metadata={"format": "pt"},
    )
    header = read_safetensors_header(path)
    assert header.file_size == path.stat().st_size
    assert header.tensors["a.w"].shape == (2, 3)
    assert header.tensors["a.w"].dtype == "F32"
    assert header.tensors["b.w"].nbytes == 8
    assert header.metadata == {"format": "pt"}
    assert header.keys("a.") == ["a.w"]
    assert len(header.fingerprint) == 16
    assert read_safetensors_header(path).fingerprint == header.fingerprint
    save_file({"a.w": np.ones((3, 2), np.float32)}, str(path))
    assert read_safetensors_header(path).fingerprint != header.fingerprint


def test_truncated_file_names_sizes_and_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "small-music"
    folder.mkdir()
    path = folder / "model.safetensors"
    save_file({"w": np.ones((64, 64), np.float32)}, str(path))
    full = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(full - 100)
    with pytest.raises(WeightsError) as info:
        read_safetensors_header(path)
    msg = str(info.value)
    assert f"model.safetensors is truncated ({full - 100} of {full} bytes)" in msg
    assert "download it again with `sa3-studio models download small-music`" in msg


def test_truncated_inside_the_header(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": np.ones((4,), np.float32)}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[:20])
    (header_len,) = struct.unpack("<Q", data[:8])
    with pytest.raises(WeightsError, match=rf"is truncated \(20 of at least {8 + header_len}"):
        read_safetensors_header(path)


def test_random_bytes_renamed(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(WeightsError, match="is not a valid safetensors file"):
        read_safetensors_header(path)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"not json at all", "not readable JSON"),
        (b"[1, 2, 3]", "not a table"),
        (json.dumps({"w": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}), "malformed"),
        (json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}), "malformed"),
        (
            json.dumps(
                {
                    "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                    "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
                }
            ),
            "overlap or leave gaps",
        ),
        (json.dumps({"__metadata__": {"x": 1}}), "metadata"),
    ],
)
def test_damaged_headers(tmp_path: Path, header: bytes | str, problem: str) -> None:
    raw = header.encode() if isinstance(header, str) else header
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 12)
    with pytest.raises(WeightsError, match=problem):
        read_safetensors_header(path)


def test_extra_bytes_and_empty_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    save_file({"w": np.ones((4,), np.float32)}, str(path))
    with path.open("ab") as fh:
        fh.write(b"junk")
    with pytest.raises(WeightsError, match="4 unexpected bytes"):
        read_safetensors_header(path)
    path.write_bytes(b"")
    with pytest.raises(WeightsError, match="truncated"):
        read_safetensors_header(path)
    with pytest.raises(WeightsError, match="is missing"):
        read_safetensors_header(tmp_path / "nope.safetensors")


# ------------------------------------------------------------------ locations


def test_search_locations_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    env = {
        "SA3_STUDIO_MODELS": f"{a}{os.pathsep}{b}{os.pathsep}",
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    app = tmp_path / "app" / "models"
    app.mkdir(parents=True)
    (tmp_path / "cwd" / "models").mkdir(parents=True)
    locs = search_locations(tmp_path / "settings", env=env, cwd=tmp_path / "cwd", app_dir=app)
    assert [(loc.path, loc.source) for loc in locs] == [
        (tmp_path / "settings", "settings"),
        (a, "SA3_STUDIO_MODELS"),
        (b, "SA3_STUDIO_MODELS"),
        (tmp_path / "data" / "sa3-studio" / "models", "user folder"),
        (app, "app folder"),
        (tmp_path / "cwd" / "models", "./models"),
        (tmp_path / "hub", "hf-cache"),
    ]
    # the same folder twice is searched once
    env = {"SA3_STUDIO_MODELS": str(a), "HF_HUB_CACHE": str(b), "XDG_DATA_HOME": str(b)}
    locs = search_locations(a, env=env, cwd=tmp_path / "cwd", app_dir=tmp_path / "cwd" / "models")
    assert [loc.source for loc in locs] == ["settings", "user folder", "app folder", "hf-cache"]


def test_missing_app_and_current_folders_are_not_searched(tmp_path: Path) -> None:
    """./models of wherever the program was started counts only when it exists; so does the
    folder beside an unpackaged program. The per-user folder is always a place."""
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "XDG_DATA_HOME": str(tmp_path / "data")}
    locs = search_locations(env=env, cwd=tmp_path, app_dir=tmp_path / "nowhere")
    assert [(loc.path, loc.source) for loc in locs] == [
        (tmp_path / "data" / "sa3-studio" / "models", "user folder"),
        (tmp_path / "hub", "hf-cache"),
    ]


def test_user_models_dir_rules(tmp_path: Path) -> None:
    assert user_models_dir({"XDG_DATA_HOME": "/d"}) == Path("/d/sa3-studio/models")
    if os.name == "posix" and sys.platform != "darwin":
        expected = Path.home() / ".local" / "share" / "sa3-studio" / "models"
        assert user_models_dir({}) == expected


def test_a_model_in_the_user_folder_is_found(tmp_path: Path, vectors_dir: Path) -> None:
    env = env_for(tmp_path / "hub")
    make_same_folder(user_models_dir(env) / "same-s", vectors_dir)
    (info,) = discover(env=env, cwd=tmp_path)
    assert (info.name, info.source) == ("same-s", "user folder")


def test_hf_cache_dir_rules(tmp_path: Path) -> None:
    assert hf_cache_dir({"HF_HUB_CACHE": "/x/hub", "HF_HOME": "/y"}) == Path("/x/hub")
    assert hf_cache_dir({"HF_HOME": "/y"}) == Path("/y/hub")
    assert hf_cache_dir({"XDG_CACHE_HOME": "/z"}) == Path("/z/huggingface/hub")
    assert hf_cache_dir({}) == Path.home() / ".cache" / "huggingface" / "hub"


# ------------------------------------------------------------------ discovery


def test_discover_everywhere_in_priority_order(tmp_path: Path, vectors_dir: Path) -> None:
    settings = make_sa3_folder(tmp_path / "settings-model", vectors_dir, "medium")
    extra = tmp_path / "extra"
    make_same_folder(extra / "same-s", vectors_dir)
    make_sa3_folder(tmp_path / "cwd" / "models" / "my-finetune", vectors_dir, "small_sfx")
    hub = tmp_path / "hub"
    staged = make_sa3_folder(tmp_path / "staging", vectors_dir)
    make_hf_cache_repo(hub, SMALL_REPO, staged)
    # Some unrelated model in the cache: not listed.
    (hub / "models--google--bert" / "snapshots" / "r1").mkdir(parents=True)

    infos = discover(settings, env=env_for(hub, extra), cwd=tmp_path / "cwd")
    table = [(i.name, i.source, i.family, i.objective, i.complete) for i in infos]
    assert table == [
        ("settings-model", "settings", "medium", "rf_denoiser", True),
        ("same-s", "SA3_STUDIO_MODELS", "small", "autoencoder", True),
        ("my-finetune", "./models", "small", "rf_denoiser", True),
        ("small-music", "hf-cache", "small", "rf_denoiser", True),
    ]
    hub_info = infos[-1]
    assert hub_info.path.endswith(os.path.join("snapshots", "abc123"))
    assert hub_info.max_seconds == pytest.approx(5292032 / 44100)
    assert hub_info.sample_rate == 44100
    assert hub_info.size_bytes == sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
    assert isinstance(hub_info, ModelInfo)


def test_missing_text_encoder_folder_is_incomplete(tmp_path: Path, vectors_dir: Path) -> None:
    folder = make_sa3_folder(tmp_path / "small-music", vectors_dir, text_encoder=False)
    info = inspect_folder(folder, source="x")
    assert info.name == "small-music"
    assert not info.complete
    assert info.missing == tuple(
        f"t5gemma-b-b-ul2/{f}"
        for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
    )
    # A standalone SAME folder needs no text encoder.
    assert inspect_folder(make_same_folder(tmp_path / "s", vectors_dir)).complete


def test_model_path_text_encoder(tmp_path: Path, vectors_dir: Path) -> None:
    folder = tmp_path / "tiny"
    shutil.copytree(vectors_dir / "pipeline_tiny", folder)
    assert inspect_folder(folder).complete
    for f in (folder / "t5gemma_tiny").iterdir():
        f.chmod(0o644)
    (folder / "t5gemma_tiny" / "tokenizer.json").unlink()
    info = inspect_folder(folder)
    assert info.missing == ("t5gemma_tiny/tokenizer.json",)
    assert info.family == "tiny"


def test_broken_blob_link_in_cache_is_missing(tmp_path: Path, vectors_dir: Path) -> None:
    hub = tmp_path / "hub"
    snapshot = make_hf_cache_repo(hub, SMALL_REPO, make_sa3_folder(tmp_path / "s", vectors_dir))
    (snapshot / "model.safetensors").resolve().unlink()
    (info,) = discover(env=env_for(hub), cwd=tmp_path)
    assert info.name == "small-music"
    assert info.missing == ("model.safetensors",)


def test_cache_snapshot_follows_refs_main(tmp_path: Path, vectors_dir: Path) -> None:
    hub = tmp_path / "hub"
    make_hf_cache_repo(hub, SMALL_REPO, make_sa3_folder(tmp_path / "old", vectors_dir), "old")
    new_src = make_sa3_folder(tmp_path / "new", vectors_dir, "small_music_base")
    make_hf_cache_repo(hub, SMALL_REPO, new_src, "new")
    repo = hub / f"models--{SMALL_REPO.replace('/', '--')}"
    (repo / "refs" / "main").write_text("old")
    (info,) = discover(env=env_for(hub), cwd=tmp_path)
    assert info.path.endswith("old")
    assert info.objective == "rf_denoiser"
    (repo / "refs" / "main").write_text("new")
    (info,) = discover(env=env_for(hub), cwd=tmp_path)
    assert info.objective == "rectified_flow"


def test_partial_official_download_without_config(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "medium"
    folder.mkdir(parents=True)
    (info,) = discover(env=env_for(tmp_path / "hub"), cwd=tmp_path)
    assert info.name == "medium"
    assert info.family == "medium"
    assert not info.complete
    assert "model_config.json" in info.missing
    assert "t5gemma-b-b-ul2/model.safetensors" in info.missing


def test_unusable_config_is_reported(tmp_path: Path, vectors_dir: Path) -> None:
    folder = make_same_folder(tmp_path / "models" / "odd", vectors_dir)
    data = json.loads((folder / "model_config.json").read_text())
    data["model"]["latent_dim"] = 7  # disagrees with the encoder's
    (folder / "model_config.json").write_text(json.dumps(data))
    (info,) = discover(env=env_for(tmp_path / "hub"), cwd=tmp_path)
    assert not info.complete
    assert "model.latent_dim" in info.missing[0]


def test_guess_model_name() -> None:
    assert guess_model_name("/x/models/small-sfx/model.safetensors") == "small-sfx"
    assert (
        guess_model_name("/c/models--stabilityai--SAME-L/snapshots/r/model.safetensors") == "same-l"
    )
    assert guess_model_name("/x/mine/model.safetensors") is None


# ------------------------------------------------------------------ resolve


def test_resolve_by_name_prefers_first_complete(tmp_path: Path, vectors_dir: Path) -> None:
    hub = tmp_path / "hub"
    make_sa3_folder(tmp_path / "cwd" / "models" / "small-music", vectors_dir, text_encoder=False)
    snapshot = make_hf_cache_repo(hub, SMALL_REPO, make_sa3_folder(tmp_path / "s", vectors_dir))
    env = env_for(hub)
    cwd = tmp_path / "cwd"
    assert resolve("small-music", env=env, cwd=cwd) == snapshot
    assert resolve(SMALL_REPO, env=env, cwd=cwd) == snapshot
    assert resolve("small_music", env=env, cwd=cwd) == snapshot
    info = resolve_info("small-music", env=env, cwd=cwd)
    assert info.source == "hf-cache"


def test_resolve_incomplete_lists_missing(tmp_path: Path, vectors_dir: Path) -> None:
    make_sa3_folder(tmp_path / "models" / "small-music", vectors_dir, text_encoder=False)
    with pytest.raises(Sa3Error) as info:
        resolve("small-music", env=env_for(tmp_path / "hub"), cwd=tmp_path)
    msg = str(info.value)
    assert "is incomplete" in msg
    assert "t5gemma-b-b-ul2/model.safetensors" in msg
    assert "sa3-studio models download small-music" in msg


def test_resolve_not_found_lists_searched(tmp_path: Path) -> None:
    env = env_for(tmp_path / "hub", tmp_path / "extra")
    with pytest.raises(Sa3Error) as info:
        resolve("medium", tmp_path / "settings", env=env, cwd=tmp_path)
    msg = str(info.value)
    for place in ("settings", "extra", "xdg-data/sa3-studio/models", "hub"):
        assert str(tmp_path / place) in msg
    assert "sa3-studio models download medium" in msg
    with pytest.raises(Sa3Error, match="official models: small-music"):
        resolve("nonsense", env=env, cwd=tmp_path)


def test_resolve_by_path(tmp_path: Path, vectors_dir: Path) -> None:
    folder = make_same_folder(tmp_path / "anywhere", vectors_dir)
    assert resolve(folder) == folder
    assert resolve(str(folder / "model_config.json")) == folder
    with pytest.raises(Sa3Error, match="is not a model folder"):
        resolve(tmp_path)
    with pytest.raises(Sa3Error, match="There is no model folder at"):
        resolve(str(tmp_path / "nope") + os.sep)
    with pytest.raises(Sa3Error, match="No model was given"):
        resolve("  ")


# ------------------------------------------------------------------ verify


def test_verify_good_models(tmp_path: Path, vectors_dir: Path) -> None:
    assert verify(make_sa3_folder(tmp_path / "a", vectors_dir)) == ()
    assert verify(make_same_folder(tmp_path / "b", vectors_dir)) == ()
    assert verify(vectors_dir / "pipeline_tiny") == ()
    assert verify(vectors_dir / "same_l_tiny") == ()
    assert verify(inspect_folder(vectors_dir / "same_s_tiny")) == ()


def test_verify_truncated_weights(tmp_path: Path, vectors_dir: Path) -> None:
    folder = make_sa3_folder(tmp_path / "small-music", vectors_dir)
    w = folder / "model.safetensors"
    size = w.stat().st_size
    with w.open("r+b") as fh:
        fh.truncate(size - 1)
    (problem,) = verify(folder)
    assert f"is truncated ({size - 1} of {size} bytes)" in problem
    assert "sa3-studio models download small-music" in problem


def test_verify_finds_each_problem(tmp_path: Path, vectors_dir: Path) -> None:
    folder = make_sa3_folder(tmp_path / "m", vectors_dir)
    save_file(
        {"model.model.w": np.ones((1,), np.float32), "ema.w": np.ones((1,), np.float32)},
        str(folder / "model.safetensors"),
    )
    enc = folder / TEXT_ENCODER_DIR
    (enc / "tokenizer_config.json").write_text("<html>not found</html>")
    (enc / "model.safetensors").write_bytes(b"\x07" * 64)
    problems = verify(folder)
    text = "\n".join(problems)
    assert "no `pretransform.model.*` tensors" in text
    assert "no `conditioner.conditioners.*` tensors" in text
    assert "1 tensors outside the expected groups (e.g. ema.w)" in text
    assert "tokenizer_config.json is not a JSON file" in text
    assert "not a valid safetensors file" in text
    assert len(problems) == 5


def test_verify_missing_and_bad_config(tmp_path: Path, vectors_dir: Path) -> None:
    folder = make_sa3_folder(tmp_path / "m", vectors_dir, text_encoder=False)
    problems = verify(folder)
    assert "t5gemma-b-b-ul2/config.json is missing" in problems
    (folder / "model_config.json").write_text("{")
    problems = verify(folder)
    assert any("not valid JSON" in p for p in problems)


# ------------------------------------------------------------------ download (no network)


REPO_LISTING = (
    ".gitattributes",
    "README.md",
    "model_config.json",
    "model.safetensors",
    "stable-audio-3.png",
    f"{TEXT_ENCODER_DIR}/config.json",
    f"{TEXT_ENCODER_DIR}/model.safetensors",
    f"{TEXT_ENCODER_DIR}/tokenizer.json",
    f"{TEXT_ENCODER_DIR}/tokenizer_config.json",
)
"""What the hub lists for a released SA3 repository (the files that matter here)."""


def fake_listing(**kwargs: Any) -> list[str]:
    """Stands in for huggingface_hub.list_repo_files."""
    assert set(kwargs) == {"repo_id", "token"}
    return list(REPO_LISTING)


class FakeDownloader:
    """Stands in for snapshot_download: records the call, then writes or raises."""

    def __init__(
        self,
        vectors: Path,
        *,
        error: BaseException | None = None,
        complete: bool = True,
        bar_bytes: tuple[int, ...] = (),
    ) -> None:
        self.vectors = vectors
        self.error = error
        self.complete = complete
        self.bar_bytes = bar_bytes
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        bar_class = kwargs.get("tqdm_class")
        if bar_class is not None:
            files = bar_class(total=len(kwargs["allow_patterns"]), desc="Fetching files")
            transfer = bar_class(total=0, unit="B", desc="Downloading bytes")
            written = bar_class(total=0, unit="B", desc="Reconstructing")
            written.total = sum(self.bar_bytes)
            for n in self.bar_bytes:
                transfer.update(n)
                written.update(n)
                files.update(1)
            for bar in (files, transfer, written):
                bar.close()
        dest = Path(kwargs["local_dir"])
        repo = kwargs["repo_id"]
        name = next(m.name for m in OFFICIAL_MODELS.values() if m.repo_id == repo)
        if name.startswith("same"):
            make_same_folder(dest, self.vectors, name.replace("-", "_"))
        else:
            make_sa3_folder(dest, self.vectors, name.replace("-", "_"), text_encoder=self.complete)
        return str(dest)


def test_download_fetches_only_needed_files(tmp_path: Path, vectors_dir: Path) -> None:
    fake = FakeDownloader(vectors_dir)
    info = download(
        "small-music", tmp_path / "models", downloader=fake, token="hf_x", lister=fake_listing
    )
    (call,) = fake.calls
    assert call["repo_id"] == SMALL_REPO
    assert call["allow_patterns"] == list(OFFICIAL_MODELS["small-music"].files)  # as listed
    assert call["local_dir"] == str(tmp_path / "models" / "small-music")
    assert call["token"] == "hf_x"
    assert info.complete
    assert info.name == "small-music"
    assert info.source == "download"
    info = download("SAME-L", tmp_path / "models", downloader=fake)
    assert fake.calls[-1]["allow_patterns"] == ["model_config.json", "model.safetensors"]
    assert info.objective == "autoencoder"


def test_download_into_the_cache_by_default(tmp_path: Path, vectors_dir: Path) -> None:
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> str:
        calls.append(kwargs)
        return str(make_same_folder(tmp_path / "snap", vectors_dir))

    download("same-s", downloader=fake)
    assert "local_dir" not in calls[0]


def test_download_reports_progress(tmp_path: Path, vectors_dir: Path) -> None:
    seen: list[tuple[int, int]] = []
    fake = FakeDownloader(vectors_dir, bar_bytes=(100, 250, 50))
    download("same-s", tmp_path, downloader=fake, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(100, 400), (350, 400), (400, 400)]


def test_download_unknown_name(tmp_path: Path, vectors_dir: Path) -> None:
    with pytest.raises(Sa3Error, match="not an official Stable Audio 3 model; choose one of"):
        download("large", tmp_path, downloader=FakeDownloader(vectors_dir))


def _http_error(cls: type[Exception], status: int) -> Exception:
    response = SimpleNamespace(status_code=status, headers={}, request=None)
    return cls(f"{status} Client Error", response=response)  # type: ignore[call-arg]


GATED = "is gated: accept its licence at https://huggingface.co/stabilityai/stable-audio-3-medium"


@pytest.mark.parametrize(
    ("make_error", "expected"),
    [
        (lambda: _http_error(hf_errors.GatedRepoError, 403), GATED),
        (lambda: _http_error(hf_errors.RepositoryNotFoundError, 401), GATED),
        (lambda: _http_error(hf_errors.HfHubHTTPError, 403), GATED),
        (lambda: _http_error(hf_errors.HfHubHTTPError, 500), "failed .*try again later"),
        (lambda: hf_errors.LocalEntryNotFoundError("no net"), "Cannot reach huggingface.co"),
        (lambda: hf_errors.OfflineModeIsEnabled("offline"), "HF_HUB_OFFLINE is set"),
        (lambda: OSError(errno.ENOSPC, "No space left on device"), "disk is full"),
        (lambda: PermissionError(errno.EACCES, "denied"), "check the connection and"),
    ],
)
def test_download_error_mapping(
    tmp_path: Path,
    vectors_dir: Path,
    make_error: Callable[[], Exception],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    fake = FakeDownloader(vectors_dir, error=make_error())
    with pytest.raises(Sa3Error, match=expected) as info:
        download("medium", tmp_path, downloader=fake, lister=fake_listing)
    if expected == GATED:
        assert "HF_TOKEN" in str(info.value)
        assert "login" in str(info.value)


def test_download_offline_env_is_named(
    tmp_path: Path, vectors_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake = FakeDownloader(vectors_dir, error=hf_errors.LocalEntryNotFoundError("x"))
    with pytest.raises(Sa3Error, match="HF_HUB_OFFLINE is set"):
        download("small-music", tmp_path, downloader=fake, lister=fake_listing)


def test_download_repo_not_found_for_ungated(tmp_path: Path, vectors_dir: Path) -> None:
    fake = FakeDownloader(vectors_dir, error=_http_error(hf_errors.RepositoryNotFoundError, 404))
    with pytest.raises(Sa3Error, match="stable-audio-3-medium-base was not found"):
        download("medium-base", tmp_path, downloader=fake, lister=fake_listing)


def test_download_bug_is_not_hidden(tmp_path: Path, vectors_dir: Path) -> None:
    fake = FakeDownloader(vectors_dir, error=ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        download("same-s", tmp_path, downloader=fake)


def test_download_that_misses_files(tmp_path: Path, vectors_dir: Path) -> None:
    fake = FakeDownloader(vectors_dir, complete=False)
    with pytest.raises(Sa3Error, match="finished but these files are missing: t5gemma"):
        download("small-sfx", tmp_path, downloader=fake, lister=fake_listing)


def test_registry_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, sa3_studio.engine.registry; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
    assert registry.__name__ == "sa3_studio.engine.registry"


SHARDED_LISTING = (
    "model_config.json",
    "model.safetensors",
    "LICENSE.md",
    f"{TEXT_ENCODER_DIR}/config.json",
    f"{TEXT_ENCODER_DIR}/generation_config.json",
    f"{TEXT_ENCODER_DIR}/model-00001-of-00002.safetensors",
    f"{TEXT_ENCODER_DIR}/model-00002-of-00002.safetensors",
    f"{TEXT_ENCODER_DIR}/model.safetensors.index.json",
    f"{TEXT_ENCODER_DIR}/pytorch_model.bin",
    f"{TEXT_ENCODER_DIR}/special_tokens_map.json",
    f"{TEXT_ENCODER_DIR}/tokenizer.json",
    f"{TEXT_ENCODER_DIR}/tokenizer.model",
    f"{TEXT_ENCODER_DIR}/tokenizer_config.json",
    f"{TEXT_ENCODER_DIR}/onnx/model.onnx",
)


def test_download_fetches_every_text_encoder_file_the_repository_lists(
    tmp_path: Path, vectors_dir: Path
) -> None:
    listed: list[dict[str, Any]] = []

    def lister(**kwargs: Any) -> list[str]:
        listed.append(kwargs)
        return list(SHARDED_LISTING)

    def downloader(**kwargs: Any) -> str:
        # Writes what was asked for: a folder with sharded text-encoder weights.
        dest = make_sa3_folder(Path(kwargs["local_dir"]), vectors_dir, text_encoder=False)
        for rel in kwargs["allow_patterns"]:
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text("{}")
        index = dest / TEXT_ENCODER_DIR / "model.safetensors.index.json"
        index.write_text(
            json.dumps(
                {
                    "weight_map": {
                        "a": "model-00001-of-00002.safetensors",
                        "b": "model-00002-of-00002.safetensors",
                    }
                }
            )
        )
        downloads.append(kwargs)
        return str(dest)

    downloads: list[dict[str, Any]] = []
    info = download("small-music", tmp_path, downloader=downloader, lister=lister, token="t")
    assert listed == [{"repo_id": SMALL_REPO, "token": "t"}]
    wanted = set(downloads[0]["allow_patterns"])
    enc = TEXT_ENCODER_DIR + "/"
    assert wanted == {
        "model_config.json",
        "model.safetensors",
        *(
            enc + f
            for f in (
                "config.json",
                "generation_config.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
                "model.safetensors.index.json",
                "special_tokens_map.json",
                "tokenizer.json",
                "tokenizer.model",
                "tokenizer_config.json",
            )
        ),
    }
    assert info.complete, info.missing
    # A shard gone missing later makes the folder incomplete, by name.
    (tmp_path / "small-music" / TEXT_ENCODER_DIR / "model-00002-of-00002.safetensors").unlink()
    again = inspect_folder(tmp_path / "small-music")
    assert not again.complete
    assert f"{enc}model-00002-of-00002.safetensors" in again.missing


def test_download_refuses_a_repository_without_a_text_encoder(
    tmp_path: Path, vectors_dir: Path
) -> None:
    fake = FakeDownloader(vectors_dir)
    with pytest.raises(Sa3Error, match=r"does not hold t5gemma-b-b-ul2/config\.json"):
        download(
            "small-music",
            tmp_path,
            downloader=fake,
            lister=lambda **kw: ["model_config.json", "model.safetensors"],
        )
    assert fake.calls == []  # nothing was downloaded


def test_download_listing_errors_are_explained(tmp_path: Path, vectors_dir: Path) -> None:
    def lister(**kwargs: Any) -> list[str]:
        raise _http_error(hf_errors.RepositoryNotFoundError, 404)

    fake = FakeDownloader(vectors_dir)
    with pytest.raises(Sa3Error, match="stable-audio-3-medium-base was not found"):
        download("medium-base", tmp_path, downloader=fake, lister=lister)
    assert fake.calls == []
