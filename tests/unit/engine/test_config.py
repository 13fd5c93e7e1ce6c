"""Strict model_config.json parsing against every config in shared/vectors."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sa3_studio.engine.config import (
    AutoencoderModelConfig,
    DistributionShiftOptions,
    ModelConfig,
    T5GemmaConditionerConfig,
    load_fragment_config,
    load_model_config,
    parse_model_config,
)
from sa3_studio.errors import ConfigError

FULL = [
    "small_music",
    "small_music_base",
    "small_sfx",
    "small_sfx_base",
    "medium",
    "medium_base",
]


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _write(tmp_path: Path, data: Any) -> Path:
    p = tmp_path / "model_config.json"
    p.write_text(json.dumps(data))
    return p


def _copy_at(data: dict[str, Any], where: tuple[Any, ...]) -> tuple[dict[str, Any], Any]:
    """A deep copy of ``data`` and the node ``where`` (keys and list indexes) leads to in it."""
    copied = copy.deepcopy(data)
    node: Any = copied
    for part in where:
        node = node[part]
    return copied, node


@pytest.fixture
def medium_json(vectors_dir: Path) -> dict[str, Any]:
    return _json(vectors_dir / "keys" / "medium.model_config.json")


def all_config_files(vectors: Path) -> list[Path]:
    return sorted(vectors.glob("*/model_config.json")) + sorted(
        (vectors / "keys").glob("*.model_config.json")
    )


def test_every_vector_config_parses(vectors_dir: Path) -> None:
    files = all_config_files(vectors_dir)
    assert len(files) >= 16
    for f in files:
        data = _json(f)
        if "model_type" in data:
            cfg = load_model_config(f)
            assert isinstance(cfg, (ModelConfig, AutoencoderModelConfig)), f
        else:
            frag = load_fragment_config(f)
            assert frag.diffusion is not None or frag.conditioning is not None, f


@pytest.mark.parametrize("name", FULL)
def test_released_full_configs(vectors_dir: Path, name: str) -> None:
    cfg = load_model_config(vectors_dir / "keys" / f"{name}.model_config.json")
    assert isinstance(cfg, ModelConfig)
    family = "medium" if name.startswith("medium") else "small"
    assert cfg.family == family
    assert cfg.objective == ("rectified_flow" if name.endswith("base") else "rf_denoiser")
    assert cfg.is_base == name.endswith("base")
    assert cfg.downsampling_ratio == 4096
    assert cfg.latent_alignment == 8192  # 4096 * (chunk_size 32 // stride 16)
    expected_size = 16777216 if family == "medium" else 5292032
    assert cfg.max_seconds == pytest.approx(expected_size / 44100)
    assert cfg.autoencoder.family == family
    assert cfg.autoencoder.attention == ("sliding_window" if family == "medium" else "chunked")
    assert cfg.conditioning.prompt.subfolder == "t5gemma-b-b-ul2"
    assert cfg.text_encoder_dir("/m") == Path("/m/t5gemma-b-b-ul2")


def test_standalone_same_equals_embedded_autoencoder(vectors_dir: Path) -> None:
    for same, full in (("same_s", "small_music"), ("same_l", "medium")):
        ae = load_model_config(vectors_dir / "keys" / f"{same}.model_config.json")
        sa3 = load_model_config(vectors_dir / "keys" / f"{full}.model_config.json")
        assert isinstance(ae, AutoencoderModelConfig)
        assert isinstance(sa3, ModelConfig)
        # The reconstructed SAME-L repo config omits `conv_bias` (ignored by the official code)
        # that the medium config sets; everything else is the same autoencoder.
        a, b = ae.model.to_kwargs(), sa3.autoencoder.to_kwargs()
        for part in ("encoder", "decoder"):
            a[part].pop("conv_bias")
            b[part].pop("conv_bias")
        assert a == b
        if same == "same_s":
            assert ae.model == sa3.autoencoder
        assert ae.objective == "autoencoder"
        assert ae.family == sa3.family


@pytest.mark.parametrize("name", [*FULL, "same_s", "same_l"])
def test_kwargs_are_the_json_keys(vectors_dir: Path, name: str) -> None:
    """Every key of the component configs reaches the constructor kwargs unchanged."""
    data = _json(vectors_dir / "keys" / f"{name}.model_config.json")
    cfg = load_model_config(vectors_dir / "keys" / f"{name}.model_config.json")
    if isinstance(cfg, ModelConfig):
        ae_json = data["model"]["pretransform"]["config"]
        dit_json = data["model"]["diffusion"]["config"]
        dit_kwargs = cfg.dit.to_kwargs()
        for key, value in dit_json.items():
            assert dit_kwargs[key] == _tuples(value), key
        assert cfg.model.pretransform.chunked is data["model"]["pretransform"]["chunked"]
    else:
        ae_json = data["model"]
    ae = cfg.autoencoder
    pairs = [
        (ae_json["encoder"]["config"], ae.encoder_kwargs()),
        (ae_json["decoder"]["config"], ae.decoder_kwargs()),
        (ae_json["bottleneck"]["config"], ae.bottleneck_kwargs()),
        (ae_json["pretransform"]["config"], ae.patch_kwargs()),
    ]
    for src, kwargs in pairs:
        for key, value in src.items():
            assert kwargs[key] == _tuples(value), key
    full = ae.to_kwargs()
    assert full["latent_dim"] == ae_json["latent_dim"]
    assert full["downsampling_ratio"] == ae_json["downsampling_ratio"]
    assert full["encoder"] == ae.encoder_kwargs()


def test_defaults_for_keys_medium_omits(vectors_dir: Path) -> None:
    cfg = load_model_config(vectors_dir / "keys" / "medium.model_config.json")
    assert isinstance(cfg, ModelConfig)
    enc = cfg.autoencoder.encoder.config
    assert enc.dyt is True
    assert enc.chunk_size == 32
    assert enc.chunk_midpoint_shift is False
    assert enc.conv_mapping is False
    assert enc.conv_bias is False  # given in the file
    assert cfg.dit.timestep_features_logsnr is False
    shift = cfg.diffusion.distribution_shift_options
    assert shift is not None
    assert shift.type == "full"
    assert shift.shift_kwargs() == {"min_length": 256, "max_length": 4096}
    assert cfg.diffusion.sampling_distribution_shift_options is None
    # SAME-S decoder: explicit sinusoidal_blocks; SAME-L encoder has none (no such key).
    assert cfg.autoencoder.decoder.config.sinusoidal_blocks == (8,)


def test_decoder_sinusoidal_blocks_default_per_stage(medium_json: dict[str, Any]) -> None:
    data = copy.deepcopy(medium_json)
    del data["model"]["pretransform"]["config"]["decoder"]["config"]["sinusoidal_blocks"]
    cfg = parse_model_config(data)
    assert isinstance(cfg, ModelConfig)
    assert cfg.autoencoder.decoder.config.sinusoidal_blocks == (0,)


def test_tiny_configs(vectors_dir: Path) -> None:
    cfg = load_model_config(vectors_dir / "pipeline_tiny")
    assert isinstance(cfg, ModelConfig)
    assert cfg.family == "tiny"
    assert cfg.latent_alignment == 16 * (8 // 4)
    assert cfg.text_encoder_dir(vectors_dir / "pipeline_tiny") == (
        vectors_dir / "pipeline_tiny" / "t5gemma_tiny"
    )
    assert isinstance(cfg.conditioning.prompt, T5GemmaConditionerConfig)
    assert cfg.conditioning.prompt.max_length == 16
    assert cfg.conditioning.by_id("seconds_total").type == "number"
    medium_tiny = load_model_config(vectors_dir / "pipeline_medium_tiny")
    assert isinstance(medium_tiny, ModelConfig)
    assert medium_tiny.autoencoder.attention == "sliding_window"
    assert medium_tiny.latent_alignment == 16 * (32 // 4)  # chunk_size defaults to 32
    same_s = load_model_config(vectors_dir / "same_s_tiny")
    assert isinstance(same_s, AutoencoderModelConfig)
    assert same_s.family == "tiny"
    dit = load_fragment_config(vectors_dir / "dit_diff_tiny")
    assert dit.diffusion is not None
    assert dit.diffusion.dit_kwargs()["attn_kwargs"] == {"qk_norm": "rms", "differential": True}


def test_configs_are_frozen_and_slotted(vectors_dir: Path) -> None:
    cfg = load_model_config(vectors_dir / "keys" / "small_music.model_config.json")
    assert isinstance(cfg, ModelConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sample_rate = 1  # type: ignore[misc]
    assert not hasattr(cfg.dit, "__dict__")
    assert hash(cfg.autoencoder) == hash(cfg.autoencoder)


def test_training_section_is_accepted_and_ignored(medium_json: dict[str, Any]) -> None:
    data = copy.deepcopy(medium_json)
    data["training"] = {"learning_rate": 1e-4, "demo": {"anything": [1, 2]}}
    cfg = parse_model_config(data)
    assert cfg == parse_model_config(medium_json)


def test_unknown_nested_field_is_ignored_and_listed(
    tmp_path: Path, medium_json: dict[str, Any]
) -> None:
    data = copy.deepcopy(medium_json)
    data["model"]["pretransform"]["config"]["encoder"]["config"]["warp_factor"] = 9
    data["model"]["diffusion"]["config"]["ff_mult"] = 4
    data["svd_bases_path"] = "bases.safetensors"
    cfg = load_model_config(_write(tmp_path, data))
    assert cfg == parse_model_config(medium_json)
    assert cfg.ignored_fields == (
        "model.diffusion.config.ff_mult",
        "model.pretransform.config.encoder.config.warp_factor",
        "svd_bases_path",
    )
    assert parse_model_config(medium_json).ignored_fields == ()
    assert "ignored_fields" not in cfg.to_kwargs()


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ((), "extra"),
        (("model",), "extra"),
        (("model", "diffusion"), "extra"),
        (("model", "diffusion", "config"), "timestep_embed_dim"),
        (("model", "conditioning"), "default_keys"),
        (("model", "pretransform"), "scale"),
        (("model", "pretransform", "config", "bottleneck", "config"), "tau"),
        (("model", "conditioning", "configs", 1, "config"), "step"),
    ],
)
def test_unknown_fields_everywhere_are_ignored(
    medium_json: dict[str, Any], where: tuple[str, ...], key: str
) -> None:
    data, node = _copy_at(medium_json, where)
    node[key] = 1
    cfg = parse_model_config(data, "m.json")
    path = ".".join(str(p) for p in (*where, key)).replace(".1.", "[1].")
    assert cfg.ignored_fields == (path,)
    assert cfg == parse_model_config(medium_json)


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        (("model", "diffusion", "config", "attn_kwargs"), "feat_scale", True),
        (("model", "diffusion", "config"), "patch_size", 2),
        (("model", "diffusion", "config"), "timestep_cond_type", "input_concat"),
        (("model", "diffusion", "config"), "prepend_cond_dim", 768),
        (("model", "diffusion"), "prepend_cond_ids", ["prompt"]),
        (("model", "diffusion"), "modular_local_cond_configs", [{"id": "x"}]),
    ],
)
def test_unknown_fields_that_change_the_computation_are_refused(
    medium_json: dict[str, Any], where: tuple[str, ...], key: str, value: Any
) -> None:
    data, node = _copy_at(medium_json, where)
    node[key] = value
    with pytest.raises(ConfigError, match=re.escape(".".join((*where, key)))):
        parse_model_config(data, "m.json")


def test_official_keys_at_their_implemented_value_are_accepted(
    medium_json: dict[str, Any],
) -> None:
    data = copy.deepcopy(medium_json)
    data["model"]["diffusion"]["config"].update(
        patch_size=1, timestep_cond_type="global", timestep_features_dim=256
    )
    data["model"]["diffusion"]["prepend_cond_ids"] = []
    cfg = parse_model_config(data)
    assert cfg.ignored_fields == ()
    assert cfg == parse_model_config(medium_json)


@pytest.mark.parametrize(
    ("where", "key", "value", "field"),
    [
        (("model", "diffusion"), "type", "unet", "model.diffusion.type"),
        (("model", "diffusion"), "diffusion_objective", "v", "diffusion_objective"),
        (("model", "conditioning", "configs", 0), "type", "clap", "configs[0].type"),
        (("model", "pretransform", "config", "bottleneck"), "type", "vq", "bottleneck.type"),
    ],
)
def test_unknown_block_or_objective_is_refused_by_name(
    medium_json: dict[str, Any], where: tuple[str, ...], key: str, value: Any, field: str
) -> None:
    data, node = _copy_at(medium_json, where)
    node[key] = value
    with pytest.raises(ConfigError, match=re.escape(field)):
        parse_model_config(data, "m.json")


@pytest.mark.parametrize(
    ("where", "key", "value", "problem"),
    [
        (("model", "diffusion", "config"), "depth", "24", "must be an integer"),
        (("model", "diffusion", "config"), "embed_dim", True, "must be an integer"),
        (("model", "diffusion", "config"), "num_heads", 24.0, "must be an integer"),
        (("model", "pretransform"), "chunked", 1, "must be true or false"),
        (("model", "pretransform", "config", "encoder", "config"), "c_mults", 6, "must be a list"),
        (("model", "pretransform", "config", "encoder", "config"), "strides", ["16"], "integer"),
        (
            ("model", "pretransform", "config", "encoder", "config"),
            "sliding_window",
            [1, 1, 1],
            "list of 2",
        ),
        (("model", "pretransform", "config", "decoder", "config"), "mask_noise", "0.01", "number"),
        (
            ("model", "conditioning", "configs", 0, "config"),
            "max_length",
            None,
            "integer, not null",
        ),
        (("model",), "diffusion", [], "must be an object"),
        ((), "sample_rate", 44100.5, "must be an integer"),
    ],
)
def test_wrong_types(
    medium_json: dict[str, Any], where: tuple[Any, ...], key: str, value: Any, problem: str
) -> None:
    data, node = _copy_at(medium_json, where)
    node[key] = value
    with pytest.raises(ConfigError, match=problem) as info:
        parse_model_config(data, "m.json")
    assert "m.json" in str(info.value)


def test_float_fields_accept_integers(medium_json: dict[str, Any]) -> None:
    data = copy.deepcopy(medium_json)
    data["model"]["pretransform"]["config"]["decoder"]["config"]["mask_noise"] = 0
    cfg = parse_model_config(data)
    assert isinstance(cfg, ModelConfig)
    assert cfg.autoencoder.decoder.config.mask_noise == 0.0
    assert isinstance(cfg.autoencoder.decoder.config.mask_noise, float)


@pytest.mark.parametrize(
    ("where", "key", "value", "problem"),
    [
        ((), "model_type", "diffusion_cond", "supports 'diffusion_cond_inpaint'"),
        (("model", "diffusion", "config"), "global_cond_type", "prepend", "only 'adaLN'"),
        (("model", "diffusion"), "diffusion_objective", "v", "rf_denoiser"),
        (("model", "pretransform", "config", "bottleneck"), "type", "vae", "softnorm"),
        (("model", "conditioning", "configs", 0), "type", "clap", "t5gemma"),
        (("model", "diffusion", "distribution_shift_options"), "type", "cosine", "logsnr"),
    ],
)
def test_unsupported_values(
    medium_json: dict[str, Any], where: tuple[Any, ...], key: str, value: Any, problem: str
) -> None:
    data, node = _copy_at(medium_json, where)
    node[key] = value
    with pytest.raises(ConfigError, match=problem):
        parse_model_config(data, "m.json")


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ((), "sample_rate"),
        ((), "model"),
        (("model",), "diffusion"),
        (("model", "diffusion", "config"), "embed_dim"),
        (("model", "pretransform", "config", "encoder", "config"), "strides"),
        (("model", "conditioning", "configs", 1, "config"), "fourier_features_type"),
    ],
)
def test_missing_required_fields(
    medium_json: dict[str, Any], where: tuple[Any, ...], key: str
) -> None:
    data, node = _copy_at(medium_json, where)
    del node[key]
    path = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in (*where, key))
    path = path.replace(".[", "[")
    with pytest.raises(ConfigError, match="`" + re.escape(path) + "` is missing"):
        parse_model_config(data, "m.json")


def test_missing_model_type(medium_json: dict[str, Any]) -> None:
    data = copy.deepcopy(medium_json)
    del data["model_type"]
    with pytest.raises(ConfigError, match="model_type"):
        parse_model_config(data, "m.json")


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda d: d["model"].__setitem__("io_channels", 128), "io_channels"),
        (
            lambda d: d["model"]["pretransform"]["config"].__setitem__("downsampling_ratio", 2048),
            "patch_size \\* prod\\(strides\\)",
        ),
        (
            lambda d: d["model"]["pretransform"]["config"]["bottleneck"]["config"].__setitem__(
                "dim", 128
            ),
            "latent sizes disagree",
        ),
        (
            lambda d: d["model"]["diffusion"].__setitem__("global_cond_ids", ["tempo"]),
            "not in conditioning.configs",
        ),
        (
            lambda d: d["model"]["pretransform"]["config"]["encoder"]["config"].__setitem__(
                "c_mults", [6, 6]
            ),
            "same length",
        ),
        (lambda d: d["model"]["diffusion"]["config"].__setitem__("num_heads", 7), "divide"),
        (
            lambda d: d["model"]["diffusion"]["distribution_shift_options"].__setitem__(
                "rate", 1.0
            ),
            "not a parameter of a 'full' shift",
        ),
    ],
)
def test_inconsistent_sizes(medium_json: dict[str, Any], edit: Any, problem: str) -> None:
    data = copy.deepcopy(medium_json)
    edit(data)
    with pytest.raises(ConfigError, match=problem):
        parse_model_config(data, "m.json")


def test_same_l_extra_keys_are_accepted_but_not_kwargs(medium_json: dict[str, Any]) -> None:
    data = copy.deepcopy(medium_json)
    enc = data["model"]["pretransform"]["config"]["encoder"]["config"]
    enc["mapping_style"] = "linear"
    enc["use_snake"] = False
    cfg = parse_model_config(data)
    assert isinstance(cfg, ModelConfig)
    assert cfg.autoencoder.encoder.config.mapping_style == "linear"
    assert "mapping_style" not in cfg.autoencoder.encoder_kwargs()
    assert "use_snake" not in cfg.autoencoder.encoder_kwargs()


def test_logsnr_sampling_shift(medium_json: dict[str, Any]) -> None:
    data = copy.deepcopy(medium_json)
    data["model"]["diffusion"]["sampling_distribution_shift_options"] = {
        "type": "logsnr",
        "rate": 0,
        "anchor_logsnr": -6.2,
        "logsnr_end": 2.0,
    }
    cfg = parse_model_config(data)
    assert isinstance(cfg, ModelConfig)
    opts = cfg.diffusion.sampling_distribution_shift_options
    assert isinstance(opts, DistributionShiftOptions)
    assert opts.type == "logsnr"
    assert opts.shift_kwargs() == {"rate": 0.0, "anchor_logsnr": -6.2, "logsnr_end": 2.0}


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"There is no model_config\.json"):
        load_model_config(tmp_path)
    bad = tmp_path / "model_config.json"
    bad.write_text('{"model_type": "autoencoder",')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_model_config(bad)
    bad.write_text('{"model_type": "autoencoder", "model_type": "autoencoder"}')
    with pytest.raises(ConfigError, match="'model_type' twice"):
        load_model_config(bad)
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_model_config(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_model_config(bad)


def test_text_encoder_dir_needs_a_location(medium_json: dict[str, Any]) -> None:
    data = copy.deepcopy(medium_json)
    prompt = data["model"]["conditioning"]["configs"][0]["config"]
    del prompt["subfolder"]
    cfg = parse_model_config(data)
    assert isinstance(cfg, ModelConfig)
    with pytest.raises(ConfigError, match="text encoder"):
        cfg.text_encoder_dir("/m")
    prompt["model_path"] = "/abs/t5"
    cfg = parse_model_config(data)
    assert isinstance(cfg, ModelConfig)
    assert cfg.text_encoder_dir("/m") == Path("/abs/t5")
