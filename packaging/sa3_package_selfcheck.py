"""Self-check of a packaged SA3 Studio: do the bundled libraries load and compute?

Run from the app folder as ``SA3_PACKAGE_SELFCHECK=1 ./sa3-studio [AUDIO_FILE]``. Every check
logs one line ``selfcheck ok: NAME: detail`` or ``selfcheck FAILED: NAME: error``; the exit code
is 0 only when all passed. No model weights and no network are needed: the text encoder is built
tiny from a config, the way the engine tests do it.

This module is part of the package, not of the ``sa3_studio`` source tree: it checks what the
freezing tool collected (a module the analysis missed fails here, not in a user's session).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger("sa3_package_selfcheck")


def _resources() -> Path:
    """resources/ of the package (or of the repository when run from source)."""
    return Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent)) / "resources"


def _bundled_demo() -> Path:
    demos = sorted((_resources() / "demo").glob("*.wav"))
    if not demos:
        raise FileNotFoundError(f"no demo WAV under {_resources() / 'demo'}")
    return demos[0]


SERVER_ONLY_PACKAGES = frozenset({"ray", "fastapi", "starlette", "uvicorn", "pydantic"})
"""Packages that only the optional [server] extra brings."""


def _check_sa3_modules() -> str:
    import sa3_studio

    names = [m.name for m in pkgutil.walk_packages(sa3_studio.__path__, "sa3_studio.")]
    server_only = 0
    for name in names:
        if name.endswith("__main__"):
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # The GPU server is the optional [server] extra (Ray, FastAPI): the desktop package
            # does not ship it, and `sa3-studio serve` says how to install it.
            if name.startswith("sa3_studio.server.") and exc.name in SERVER_ONLY_PACKAGES:
                server_only += 1
                continue
            raise
    return (
        f"{len(names) - server_only} modules of sa3_studio {sa3_studio.__version__} import "
        f"({server_only} server modules need the [server] extra)"
    )


def _check_torch() -> str:
    import torch

    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, 2, 8, 16, generator=gen)  # (B, H, T, D)
    out = torch.nn.functional.scaled_dot_product_attention(q, q, q)  # (B, H, T, D)
    if not bool(torch.isfinite(out).all()):
        raise ValueError("attention produced non-finite values")
    cuda = torch.version.cuda or "none"
    devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return f"torch {torch.__version__}, CUDA build {cuda}, {devices} CUDA device(s)"


def _check_safetensors() -> str:
    import torch
    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.safetensors"
        save_file({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, str(path))
        back = load_file(str(path))["w"]
    if back.shape != (2, 3) or float(back.sum()) != 15.0:
        raise ValueError(f"round trip gave {back}")
    return "save/load round trip"


def _check_text_encoder() -> str:
    import torch
    from transformers import T5GemmaConfig, T5GemmaEncoderModel

    module = {
        "vocab_size": 64,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "query_pre_attn_scalar": 16,
    }
    cfg = T5GemmaConfig(encoder=module, decoder=module, vocab_size=64, is_encoder_decoder=False)
    # T5Gemma refuses SDPA (see the test-environment notes): eager, as the engine loads it.
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = T5GemmaEncoderModel(cfg).eval()
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([[2, 5, 7]]), attention_mask=torch.ones(1, 3))
    hidden = out.last_hidden_state  # (B, T, C)
    if tuple(hidden.shape) != (1, 3, 32) or not bool(torch.isfinite(hidden).all()):
        raise ValueError(f"unexpected encoder output {tuple(hidden.shape)}")
    import transformers

    return f"transformers {transformers.__version__}, tiny T5Gemma encoder runs"


def _check_tokenizers() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoConfig, GemmaTokenizer

    tok = Tokenizer(models.WordLevel({"<pad>": 0, "[UNK]": 1, "warm": 2, "pad": 3}, "[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # The text encoder's tokenizer class, wrapped around a tiny vocabulary.
    gemma = GemmaTokenizer(tokenizer_object=tok, pad_token="<pad>", unk_token="[UNK]")
    ids = gemma("warm pad drums", add_special_tokens=False)["input_ids"]
    if ids != [2, 3, 1]:
        raise ValueError(f"tokenised to {ids}")
    # The Auto classes find the T5Gemma configuration by its model type.
    cfg = AutoConfig.for_model("t5gemma")
    return f"Gemma tokenizer over tokenizers, AutoConfig -> {type(cfg).__name__}"


def _check_audio_files(path: Path) -> str:
    import numpy as np
    import soundfile as sf
    import soxr

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    if data.shape[0] == 0:
        raise ValueError(f"{path} decoded to no frames")
    resampled = soxr.resample(data, rate, 48000)  # (T', C)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("flac", "ogg", "mp3", "aiff"):
            out = Path(tmp) / f"x.{ext}"
            sf.write(str(out), data[: rate // 2], rate)
            back, _ = sf.read(str(out), dtype="float32", always_2d=True)
            if back.shape[1] != data.shape[1] or not np.isfinite(back).all():
                raise ValueError(f"{ext} round trip gave shape {back.shape}")
            written.append(ext)
    return (
        f"{path.name}: {data.shape[0]} frames x {data.shape[1]} ch at {rate} Hz, "
        f"resampled to {resampled.shape[0]} at 48 kHz, libsndfile writes {'/'.join(written)}"
    )


def _check_loudness(path: Path) -> str:
    import soundfile as sf

    from sa3_studio.audio.loudness import integrated_loudness

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    lufs = integrated_loudness(data.T, rate)
    return f"integrated loudness {lufs:.1f} LUFS"


def _check_portaudio() -> str:
    import sounddevice as sd

    devices = sd.query_devices()
    return f"{sd.get_portaudio_version()[1]}, {len(devices)} device(s)"


def _check_qt() -> str:
    import pyqtgraph
    from PySide6 import QtCore, QtGui, QtSvg, QtWidgets

    del QtGui, QtWidgets  # imported to prove they load
    icon = _resources() / "icons" / "sa3-studio.svg"
    if not QtSvg.QSvgRenderer(str(icon)).isValid():
        raise ValueError(f"Qt cannot draw the bundled icon {icon}")
    return f"Qt {QtCore.qVersion()}, pyqtgraph {pyqtgraph.__version__}, the SVG icon renders"


def _check_hub() -> str:
    import huggingface_hub

    if not callable(huggingface_hub.hf_hub_download):
        raise TypeError("huggingface_hub.hf_hub_download is missing")
    return f"huggingface_hub {huggingface_hub.__version__}"


def _check_no_weights() -> str:
    # The package folder when frozen; resources/ when run from a source tree.
    base = Path(getattr(sys, "_MEIPASS", _resources()))
    patterns = ("*.safetensors", "*.ckpt", "*.pt", "*.pth", "*.bin", "*.gguf", "*.onnx")
    found = [
        str(p)
        for pat in patterns
        for p in base.rglob(pat)
        if p.is_file() and p.stat().st_size > 1_000_000
    ]
    if found:
        raise ValueError(f"model weights must not be in the package: {found[:5]}")
    return f"no model weights under {base}"


def run_selfcheck(argv: Sequence[str]) -> int:
    """Run every check; returns 0 when all pass, 1 otherwise.

    Args:
        argv: optional audio file to decode (default: the bundled demo clip).

    Returns:
        The process exit code.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    audio = Path(argv[0]) if argv else _bundled_demo()
    checks: list[tuple[str, Callable[[], str]]] = [
        ("sa3_studio", _check_sa3_modules),
        ("torch", _check_torch),
        ("safetensors", _check_safetensors),
        ("text encoder", _check_text_encoder),
        ("tokenizers", _check_tokenizers),
        ("audio files", lambda: _check_audio_files(audio)),
        ("loudness", lambda: _check_loudness(audio)),
        ("portaudio", _check_portaudio),
        ("qt", _check_qt),
        ("hub", _check_hub),
        ("weights", _check_no_weights),
    ]
    failed = 0
    for name, check in checks:
        try:
            log.info("selfcheck ok: %s: %s", name, check())
        except Exception as exc:  # every failure is reported, then the next check runs
            failed += 1
            log.exception("selfcheck FAILED: %s: %s", name, exc)
    log.info("selfcheck finished: %d checks, %d failures", len(checks), failed)
    return 1 if failed else 0
