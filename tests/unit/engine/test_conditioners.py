"""Prompt and duration conditioners: parity with conditioner_tiny, folder resolution, keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from vector_cases import FULL_MODELS, parity_tolerance

from sa3_studio.engine.models.conditioners import (
    MultiConditioner,
    NumberConditioner,
    T5GemmaConditioner,
    T5GemmaTextEncoder,
    assemble_conditioning,
)
from sa3_studio.errors import ConfigError, WeightsError

PREFIX = "conditioner."


def _conditioning_config(path: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(path.read_text())["model"]["conditioning"]
    return config


class _Vector:
    """conditioner_tiny: the conditioner with weights and text encoder loaded, and the records."""

    def __init__(self, folder: Path) -> None:
        self.config = _conditioning_config(folder / "model_config.json")
        self.meta = json.loads((folder / "meta.json").read_text())
        self.inputs = load_file(folder / "inputs.safetensors")
        self.outputs = load_file(folder / "outputs.safetensors")
        self.conditioner = MultiConditioner.from_config_dict(self.config).eval()
        weights = load_file(folder / "model.safetensors")
        self.conditioner.load_state_dict(
            {k.removeprefix(PREFIX): v for k, v in weights.items()}, strict=True
        )
        # model_path "t5gemma_tiny" is relative to the model folder; here the tiny encoder sits
        # beside conditioner_tiny, so the vectors folder plays the model folder.
        self.conditioner.load_text_encoders(folder.parent, dtype=torch.float32)
        self.checks = self.meta["checks"]
        self.tol = parity_tolerance(self.checks)

    def tolerance(self, tensor: str) -> float:
        return parity_tolerance(self.checks, tensor)

    @property
    def prompt(self) -> T5GemmaConditioner:
        conditioner = self.conditioner.conditioners["prompt"]
        assert isinstance(conditioner, T5GemmaConditioner)
        return conditioner

    def metadata(self) -> list[dict[str, Any]]:
        return [
            {"prompt": p, "seconds_total": s}
            for p, s in zip(self.meta["prompts"], self.meta["seconds_total"], strict=True)
        ]


@pytest.fixture(scope="module")
def vector(vectors_dir: Path) -> _Vector:
    return _Vector(vectors_dir / "conditioner_tiny")


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a.float() - b.float()).abs().max())


def test_tokenizer_call_reproduces_token_ids(vector: _Vector) -> None:
    ids, mask = vector.prompt.text_encoder.tokenize(vector.meta["prompts"], 16)
    assert torch.equal(ids, vector.inputs["token_ids"])
    assert torch.equal(mask, vector.inputs["token_attention_mask"])
    assert torch.equal(ids, vector.outputs["t5/input_ids"])


def test_encoder_last_hidden_state(vector: _Vector) -> None:
    hidden = vector.prompt.text_encoder.encode(
        vector.outputs["t5/input_ids"], vector.outputs["t5/attention_mask"]
    )
    assert _max_diff(hidden, vector.outputs["t5/last_hidden_state"]) <= vector.tolerance(
        "t5/last_hidden_state"
    )


def test_conditioner_outputs_match(vector: _Vector) -> None:
    with torch.no_grad():
        out = vector.conditioner(vector.metadata(), "cpu")
    emb, mask = out["prompt"]
    assert _max_diff(emb, vector.outputs["out/prompt/0"]) <= vector.tolerance("out/prompt/0")
    assert mask.dtype == torch.bool
    assert torch.equal(mask, vector.outputs["out/prompt/1"])
    seconds, ones = out["seconds_total"]
    assert _max_diff(seconds, vector.outputs["out/seconds_total/0"]) <= vector.tolerance(
        "out/seconds_total/0"
    )
    assert torch.equal(ones, vector.outputs["out/seconds_total/1"])


def test_learned_padding_replaces_padded_positions(vector: _Vector) -> None:
    with torch.no_grad():
        emb, mask = vector.prompt(["", "dog barking"], "cpu")
    assert mask[0].sum().item() == 2  # the empty prompt is <bos> <eos>
    pad = vector.prompt.padding_embedding
    assert torch.equal(emb[~mask], pad.expand(int((~mask).sum()), -1))
    assert not torch.equal(emb[mask][0], pad)


def test_the_encoder_runs_only_over_the_longest_prompt(
    vector: _Vector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real tokens never attend to padding, so the padding columns need not be computed."""
    encoder = vector.prompt.text_encoder
    full_encode = encoder.encode
    widths: list[int] = []

    def recording(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        widths.append(ids.shape[1])
        return full_encode(ids, mask)

    monkeypatch.setattr(encoder, "encode", recording)
    prompts = ["dog", "a dog barking far away"]
    with torch.no_grad():
        emb, mask = vector.prompt(prompts, "cpu")
    used = int(mask.sum(dim=1).max())
    assert widths == [used]
    assert used < mask.shape[1]
    # The same as running every column (the official computation), to rounding.
    monkeypatch.setattr(vector.prompt, "padding_mode", "none")  # "none" runs every column
    with torch.no_grad():
        full, _ = vector.prompt(prompts, "cpu")
    assert widths == [used, mask.shape[1]]
    assert _max_diff(emb[mask], full[mask]) <= vector.tol


def test_seconds_are_clamped_to_the_range(vector: _Vector) -> None:
    seconds = vector.conditioner.conditioners["seconds_total"]
    assert isinstance(seconds, NumberConditioner)
    with torch.no_grad():
        emb, _ = seconds([384.0, 500.0, 0.0, -3.0, 30.0], "cpu")
    assert torch.equal(emb[0], emb[1])
    assert torch.equal(emb[2], emb[3])
    assert not torch.equal(emb[4], emb[2])


def test_assembly_matches_the_dit_layout(vector: _Vector) -> None:
    with torch.no_grad():
        out = vector.conditioner(vector.metadata(), "cpu")
    inputs = assemble_conditioning(out, ["prompt", "seconds_total"], ["seconds_total"])
    assert inputs.cross_attn_cond.shape == (4, 17, 768)
    assert inputs.cross_attn_mask.dtype == torch.bool
    assert bool(inputs.cross_attn_mask[:, -1].all())
    # The seconds token is both the last cross token and the global vector.
    assert torch.equal(inputs.cross_attn_cond[:, -1], inputs.global_cond)


def test_text_encoder_loads_in_bfloat16(vectors_dir: Path, vector: _Vector) -> None:
    encoder = T5GemmaTextEncoder.load(vectors_dir / "t5gemma_tiny", dtype=torch.bfloat16)
    assert encoder.dtype == torch.bfloat16
    hidden = encoder.encode(vector.outputs["t5/input_ids"], vector.outputs["t5/attention_mask"])
    assert hidden.dtype == torch.bfloat16
    ref = vector.outputs["t5/last_hidden_state"]
    assert _max_diff(hidden, ref) / float(ref.abs().max()) < 0.05
    # A bfloat16 encoder feeds the float32 conditioner: padding keeps its float32 value.
    prompt = T5GemmaConditioner(768, max_length=16, padding_mode="learned")
    prompt.load_state_dict(vector.prompt.state_dict())
    prompt.set_text_encoder(encoder)
    with torch.no_grad():
        emb, mask = prompt(["dog barking"])
    assert emb.dtype == torch.float32
    assert torch.equal(emb[~mask][0], prompt.padding_embedding)


def test_subfolder_resolution_loads_from_the_model_folder(
    tmp_path: Path, vectors_dir: Path
) -> None:
    shutil.copytree(vectors_dir / "t5gemma_tiny", tmp_path / "t5gemma-b-b-ul2")
    prompt = T5GemmaConditioner(
        768,
        max_length=8,
        padding_mode="learned",
        repo_id="stabilityai/stable-audio-3-medium",
        subfolder="t5gemma-b-b-ul2",
    )
    assert prompt.text_encoder_folder(tmp_path) == tmp_path / "t5gemma-b-b-ul2"
    encoder = prompt.load_text_encoder(tmp_path, dtype=torch.float32)
    assert encoder.folder == tmp_path / "t5gemma-b-b-ul2"
    emb, mask = prompt(["warm pad"])
    assert emb.shape == (1, 8, 768)
    assert mask.shape == (1, 8)


def test_missing_text_encoder_folder_says_which_and_how(tmp_path: Path) -> None:
    prompt = T5GemmaConditioner(
        768, repo_id="stabilityai/stable-audio-3-medium", subfolder="t5gemma-b-b-ul2"
    )
    with pytest.raises(WeightsError) as info:
        prompt.load_text_encoder(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "t5gemma-b-b-ul2") in message
    assert "stabilityai/stable-audio-3-medium" in message
    by_path = T5GemmaConditioner(768, model_path="encoder")
    with pytest.raises(WeightsError, match="model_path"):
        by_path.load_text_encoder(tmp_path)


def test_incomplete_text_encoder_folder(tmp_path: Path, vectors_dir: Path) -> None:
    folder = tmp_path / "t5gemma-b-b-ul2"
    shutil.copytree(vectors_dir / "t5gemma_tiny", folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"model\.safetensors"):
        T5GemmaTextEncoder.load(folder)


def test_unresolvable_text_encoder_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="subfolder"):
        T5GemmaConditioner(768).text_encoder_folder(tmp_path)
    with pytest.raises(WeightsError, match="no text encoder"):
        T5GemmaConditioner(768)(["x"])


def test_conditioning_config_errors() -> None:
    seconds = {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 384}}
    with pytest.raises(ConfigError, match="clap"):
        MultiConditioner.from_config_dict(
            {"configs": [{"id": "x", "type": "clap", "config": {}}], "cond_dim": 768}
        )
    with pytest.raises(ConfigError, match="fields"):
        MultiConditioner.from_config_dict(
            {
                "configs": [{"id": "n", "type": "number", "config": {"bogus": 1}}],
                "cond_dim": 768,
            }
        )
    with pytest.raises(ConfigError, match="unique"):
        MultiConditioner.from_config_dict({"configs": [seconds, seconds], "cond_dim": 768})
    with pytest.raises(ConfigError, match="range"):
        NumberConditioner(768, min_val=5, max_val=5)


@pytest.mark.parametrize("name", FULL_MODELS)
def test_meta_build_has_the_official_keys(vectors_dir: Path, name: str) -> None:
    keys = vectors_dir / "keys"
    config = _conditioning_config(keys / f"{name}.model_config.json")
    with torch.device("meta"):
        conditioner = MultiConditioner.from_config_dict(config)
    ours = {
        PREFIX + k: (list(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in conditioner.state_dict().items()
    }
    listed = json.loads((keys / f"{name}.keys.json").read_text())["keys"]
    official = {
        e["key"]: (e["shape"], e["dtype"])
        for e in listed
        if e["key"].startswith(PREFIX + "conditioners.")
    }
    assert len(official) == 3
    assert ours == official
