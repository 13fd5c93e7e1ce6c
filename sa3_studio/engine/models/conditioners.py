"""Prompt and duration conditioners of SA3 (reference §1.3 and §4).

State-dict keys equal the official ones under ``conditioner.conditioners.``:
``prompt.padding_embedding`` and ``seconds_total.embedder.embedding.1.{weight,bias}``.

The T5Gemma text encoder is not part of the SA3 state dict: it is held by a plain
:class:`T5GemmaTextEncoder` object (not a submodule) loaded from its own Hugging Face folder, which
ships inside every SA3 model folder (``t5gemma-b-b-ul2/``). It is never downloaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from sa3_studio.engine.models.transformer import ExpoFourierFeatures
from sa3_studio.errors import ConfigError, WeightsError

logger = logging.getLogger(__name__)

T5GEMMA_MODEL_NAME = "google/t5gemma-b-b-ul2"
T5GEMMA_DIM = 768
PaddingMode = Literal["learned", "zero", "none"]
TextEncoderDtype = torch.dtype | Literal["auto"]

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


class T5GemmaTextEncoder:
    """The T5Gemma tokenizer and encoder (Hugging Face ``transformers``), loaded from a folder.

    A plain object rather than a module, so it never enters the SA3 state dict and is not moved
    or cast with the diffusion model.
    """

    def __init__(self, tokenizer: Any, model: nn.Module, folder: Path) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.folder = folder

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        dtype: TextEncoderDtype = "auto",
        device: str | torch.device = "cpu",
    ) -> T5GemmaTextEncoder:
        """Load tokenizer and encoder from ``folder`` without touching the network.

        Args:
            folder: a T5Gemma folder (config.json, model.safetensors, tokenizer files).
            dtype: parameter dtype; ``"auto"`` keeps the dtype stored in the folder, which is
                what the official code gets (it passes no dtype). float32 and bfloat16 both work.
            device: where the encoder runs.

        Raises:
            WeightsError: the folder or one of its files is missing or cannot be loaded.
        """
        folder = Path(folder)
        check_text_encoder_folder(folder)
        from transformers import AutoConfig, AutoTokenizer, T5GemmaEncoderModel
        from transformers.utils import logging as hf_logging

        # A terminal progress bar means nothing in the editor, and its monitor thread outlives
        # the load; the engine reports its own progress.
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
            # Only the encoder is used; the official conditioner sets this after loading the config.
            config.is_encoder_decoder = False
            model: nn.Module = T5GemmaEncoderModel.from_pretrained(
                folder,
                config=config,
                dtype=dtype,
                attn_implementation="eager",
                local_files_only=True,
            )
        except (OSError, ValueError, KeyError) as exc:
            raise WeightsError(
                f"The text encoder in {folder} could not be loaded ({exc}). Re-download the "
                "model folder, which includes the text encoder."
            ) from exc
        encoder_config = getattr(config, "encoder", config)
        hidden = int(getattr(encoder_config, "hidden_size", T5GEMMA_DIM))
        if hidden != T5GEMMA_DIM:
            raise WeightsError(
                f"The text encoder in {folder} has width {hidden}, but SA3 needs the "
                f"{T5GEMMA_DIM}-wide {T5GEMMA_MODEL_NAME} encoder. Use the folder shipped with "
                "the model."
            )
        model.eval().requires_grad_(False).to(device)
        logger.info("Loaded text encoder from %s (%s)", folder, next(model.parameters()).dtype)
        return cls(tokenizer, model, folder)

    @property
    def device(self) -> torch.device:
        """Where the encoder's parameters live."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The encoder's parameter dtype."""
        return next(self.model.parameters()).dtype

    def tokenize(
        self, prompts: Sequence[str], max_length: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, max_length) int64 and mask (B, max_length) bool, as the official code.

        Truncates to ``max_length`` and pads to exactly ``max_length`` with the default special
        tokens.
        """
        encoded = self.tokenizer(
            list(prompts),
            truncation=True,
            max_length=max_length,
            padding="max_length",
            return_tensors="pt",
        )
        return encoded["input_ids"], encoded["attention_mask"].to(torch.bool)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``last_hidden_state`` (B, N, 768) in the encoder's dtype, on the encoder's device."""
        device = self.device
        with torch.no_grad():
            out = self.model(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device, torch.bool)
            )
        hidden: torch.Tensor = out["last_hidden_state"]
        return hidden


def check_text_encoder_folder(folder: Path, hint: str | None = None) -> None:
    """Raise a WeightsError naming what is missing when ``folder`` is not a T5Gemma folder.

    Args:
        folder: the expected text-encoder folder.
        hint: a sentence on how to get it (defaults to re-downloading the model folder).
    """
    hint = hint or (
        "Download the complete SA3 model repository, which includes this folder, and keep its "
        "layout."
    )
    if not folder.is_dir():
        raise WeightsError(
            f"The text encoder folder {folder} does not exist; it should hold the T5Gemma encoder "
            f"(config.json, model.safetensors, tokenizer.json). {hint}"
        )
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        missing.append(" or ".join(_TOKENIZER_FILES))
    if not any((folder / f).is_file() for f in _WEIGHT_FILES):
        missing.append(" or ".join(_WEIGHT_FILES))
    if missing:
        raise WeightsError(f"The text encoder folder {folder} lacks {', '.join(missing)}. {hint}")


class T5GemmaConditioner(nn.Module):
    """Prompt conditioner: T5Gemma ``last_hidden_state`` with padding replaced (reference §4.1).

    The module holds only the SA3 weights (``padding_embedding``, and ``proj_out`` when a
    projection is configured); attach the encoder with :meth:`set_text_encoder` or
    :meth:`load_text_encoder`.
    """

    def __init__(
        self,
        output_dim: int = T5GEMMA_DIM,
        *,
        max_length: int = 128,
        padding_mode: PaddingMode = "zero",
        project_out: bool = False,
        model_name: str = T5GEMMA_MODEL_NAME,
        model_path: str | None = None,
        repo_id: str | None = None,
        subfolder: str | None = None,
        enable_grad: bool = False,
    ) -> None:
        super().__init__()
        if model_name != T5GEMMA_MODEL_NAME:
            raise ConfigError(
                f"The prompt conditioner names the text model {model_name!r}; SA3 only uses "
                f"{T5GEMMA_MODEL_NAME!r}."
            )
        if padding_mode not in ("learned", "zero", "none"):
            raise ConfigError(
                f"The prompt conditioner's padding_mode {padding_mode!r} is unknown; use "
                "'learned', 'zero' or 'none'."
            )
        if enable_grad:
            raise ConfigError(
                "The prompt conditioner sets enable_grad, which is for training only."
            )
        self.max_length = int(max_length)
        self.padding_mode = padding_mode
        self.model_path = model_path
        self.repo_id = repo_id
        self.subfolder = subfolder
        self.proj_out: nn.Module = (
            nn.Linear(T5GEMMA_DIM, output_dim)
            if project_out or output_dim != T5GEMMA_DIM
            else nn.Identity()
        )
        if padding_mode == "learned":
            self.padding_embedding = nn.Parameter(torch.zeros(output_dim))
        self._text_encoder: T5GemmaTextEncoder | None = None

    @property
    def text_encoder(self) -> T5GemmaTextEncoder:
        """The attached encoder; raises a WeightsError when none is loaded yet."""
        if self._text_encoder is None:
            raise WeightsError(
                "The prompt conditioner has no text encoder loaded; load the model folder's "
                "text encoder before generating."
            )
        return self._text_encoder

    def set_text_encoder(self, encoder: T5GemmaTextEncoder) -> None:
        """Attach an already loaded encoder (kept outside the module tree)."""
        self._text_encoder = encoder

    def text_encoder_folder(self, model_dir: str | Path) -> Path:
        """The encoder folder this conditioner's config points at, inside ``model_dir``.

        ``model_path`` wins (relative to ``model_dir`` unless absolute); otherwise ``subfolder``
        (e.g. ``t5gemma-b-b-ul2``, as in the released configs that name ``repo_id``).

        Raises:
            ConfigError: the config names neither ``model_path`` nor ``subfolder``.
        """
        model_dir = Path(model_dir)
        if self.model_path:
            path = Path(self.model_path)
            return path if path.is_absolute() else model_dir / path
        if self.subfolder:
            return model_dir / self.subfolder
        raise ConfigError(
            "The prompt conditioner config names neither model_path nor subfolder, so the text "
            'encoder folder is unknown; add subfolder: "t5gemma-b-b-ul2" to model_config.json.'
        )

    def load_text_encoder(
        self,
        model_dir: str | Path,
        *,
        dtype: TextEncoderDtype = "auto",
        device: str | torch.device = "cpu",
    ) -> T5GemmaTextEncoder:
        """Resolve the folder (:meth:`text_encoder_folder`), load and attach the encoder.

        Raises:
            ConfigError: the folder cannot be determined from the config.
            WeightsError: the folder is missing or incomplete.
        """
        folder = self.text_encoder_folder(model_dir)
        if self.model_path:
            hint = (
                f"The model config's model_path {self.model_path!r} points there; put the "
                "T5Gemma text encoder in that folder or fix model_path."
            )
        else:
            source = f" {self.repo_id}" if self.repo_id else ""
            hint = (
                f"Download the complete model repository{source}; it includes the "
                f"{self.subfolder}/ folder, which must stay inside {Path(model_dir)}."
            )
        check_text_encoder_folder(folder, hint)
        encoder = T5GemmaTextEncoder.load(folder, dtype=dtype, device=device)
        self.set_text_encoder(encoder)
        return encoder

    def apply_padding(self, embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Replace (learned), zero or keep embeddings (B, N, D) where ``mask`` (B, N) is false."""
        if self.padding_mode == "learned":
            pad = self.padding_embedding[None, None, :].expand_as(embeddings)
            return torch.where(mask[:, :, None], embeddings, pad)
        if self.padding_mode == "zero":
            return embeddings * mask[:, :, None].float()
        return embeddings

    def forward(
        self, prompts: Sequence[str], device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode prompts.

        Args:
            prompts: B strings (an empty string is the unconditional prompt).
            device: where the outputs go (default: this module's device).

        Returns:
            (embeddings (B, max_length, D), mask (B, max_length) bool, true for real tokens).
        """
        encoder = self.text_encoder
        out_device = torch.device(device) if device is not None else self._device()
        ids, mask = encoder.tokenize(prompts, self.max_length)
        hidden = self._encode_real_tokens(ids, mask).to(out_device)  # (B, N, 768)
        mask = mask.to(out_device)
        if isinstance(self.proj_out, nn.Linear):
            hidden = self.proj_out(hidden.to(self.proj_out.weight.dtype))
        return self.apply_padding(hidden, mask), mask

    def _encode_real_tokens(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The encoder's states (B, N, D), running it only over the longest prompt's tokens.

        The encoder is given the attention mask, so a real token never attends to padding and
        its state does not depend on how much padding follows; the padded positions' states
        are replaced (learned padding) or zeroed afterwards. So with right padding the encoder
        runs on the first ``max(lengths)`` columns and the rest come back as zeros: a short
        prompt costs ~20 positions instead of 256. With ``padding_mode == "none"`` the padded
        states are kept, so the whole sequence runs.
        """
        encoder = self.text_encoder
        n = ids.shape[1]
        valid = mask.to(torch.bool)
        lengths = valid.sum(dim=1)
        used = int(lengths.max()) if lengths.numel() else 0
        right_padded = bool(
            (valid == (torch.arange(n, device=valid.device)[None, :] < lengths[:, None])).all()
        )
        if self.padding_mode == "none" or not right_padded or not 0 < used < n:
            return encoder.encode(ids, mask)
        hidden = encoder.encode(ids[:, :used], mask[:, :used])
        return F.pad(hidden, (0, 0, 0, n - used))

    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")


class NumberEmbedder(nn.Module):
    """``Linear(ExpoFourierFeatures(u))``; keys ``embedding.1.{weight,bias}``."""

    def __init__(self, features: int, dim: int = 256) -> None:
        super().__init__()
        self.features = features
        self.embedding = nn.Sequential(ExpoFourierFeatures(dim), nn.Linear(dim, features))

    @property
    def linear(self) -> nn.Linear:
        """The learned projection (``embedding.1``)."""
        linear = self.embedding[1]
        assert isinstance(linear, nn.Linear)
        return linear

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Embed ``u`` of any shape; returns ``(*u.shape, features)``."""
        out: torch.Tensor = self.embedding(u.reshape(-1))
        return out.view(*u.shape, self.features)


class NumberConditioner(nn.Module):
    """Duration conditioner: clamp, normalise to [0, 1], Fourier features, Linear (§4.2)."""

    def __init__(
        self,
        output_dim: int,
        *,
        min_val: float = 0.0,
        max_val: float = 1.0,
        fourier_features_type: Literal["expo"] = "expo",
    ) -> None:
        super().__init__()
        if fourier_features_type != "expo":
            raise ConfigError(
                f"The number conditioner's fourier_features_type {fourier_features_type!r} is "
                "not supported; SA3 uses 'expo'."
            )
        if not max_val > min_val:
            raise ConfigError(
                f"The number conditioner's range [{min_val}, {max_val}] is empty; "
                "max_val must exceed min_val."
            )
        self.min_val = min_val
        self.max_val = max_val
        self.embedder = NumberEmbedder(output_dim)

    def forward(
        self, values: Sequence[float] | torch.Tensor, device: str | torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed numbers (e.g. seconds).

        Args:
            values: B numbers; out-of-range values are clamped to [min_val, max_val].
            device: where the outputs go (default: this module's device).

        Returns:
            (embeddings (B, 1, D), mask of ones (B, 1) float32).
        """
        weight = self.embedder.linear.weight
        out_device = torch.device(device) if device is not None else weight.device
        if isinstance(values, torch.Tensor):
            u = values.detach().to(out_device, torch.float32)
        else:
            u = torch.tensor([float(v) for v in values], dtype=torch.float32, device=out_device)
        u = u.clamp(self.min_val, self.max_val)
        u = ((u - self.min_val) / (self.max_val - self.min_val)).to(weight.dtype)  # (B,)
        emb = self.embedder(u.to(weight.device)).to(out_device)[:, None, :]  # (B, 1, D)
        return emb, torch.ones(emb.shape[0], 1, device=out_device)


Conditioner = T5GemmaConditioner | NumberConditioner


def build_conditioner(entry: Mapping[str, Any], cond_dim: int) -> Conditioner:
    """Build one conditioner from an entry of ``model.conditioning.configs``.

    Raises:
        ConfigError: the type is unknown or the entry has fields the conditioner does not take.
    """
    kind = entry.get("type")
    config = dict(entry.get("config") or {})
    try:
        if kind == "t5gemma":
            return T5GemmaConditioner(cond_dim, **config)
        if kind == "number":
            return NumberConditioner(cond_dim, **config)
    except TypeError as exc:
        raise ConfigError(
            f"The {kind} conditioner {entry.get('id')!r} has fields SA3 Studio does not know "
            f"({exc}); check model_config.json."
        ) from exc
    raise ConfigError(
        f"The conditioner {entry.get('id')!r} has type {kind!r}; SA3 Studio knows 't5gemma' "
        "and 'number'."
    )


class MultiConditioner(nn.Module):
    """All conditioners by id; keys ``conditioners.<id>.*`` (``conditioner.`` in checkpoints)."""

    def __init__(self, conditioners: Mapping[str, Conditioner]) -> None:
        super().__init__()
        self.conditioners = nn.ModuleDict(dict(conditioners))

    @classmethod
    def from_config_dict(cls, conditioning: Mapping[str, Any]) -> MultiConditioner:
        """Build from ``model.conditioning`` of a ``model_config.json`` (no text encoder loaded).

        Raises:
            ConfigError: a field is missing, unknown or unsupported.
        """
        unknown = sorted(set(conditioning) - {"configs", "cond_dim"})
        if unknown or "configs" not in conditioning or "cond_dim" not in conditioning:
            raise ConfigError(
                "The conditioning config must have exactly the fields 'configs' and 'cond_dim'"
                + (f" (unknown: {unknown})" if unknown else "")
                + "; check model_config.json."
            )
        cond_dim = int(conditioning["cond_dim"])
        built: dict[str, Conditioner] = {}
        for entry in conditioning["configs"]:
            cid = entry.get("id")
            if not isinstance(cid, str) or cid in built:
                raise ConfigError(
                    f"Conditioner ids must be unique strings; {cid!r} is not. "
                    "Check model_config.json."
                )
            built[cid] = build_conditioner(entry, cond_dim)
        return cls(built)

    def load_text_encoders(
        self,
        model_dir: str | Path,
        *,
        dtype: TextEncoderDtype = "auto",
        device: str | torch.device = "cpu",
    ) -> None:
        """Load the text encoder of every prompt conditioner from ``model_dir`` (never downloads).

        Raises:
            ConfigError: a conditioner's folder cannot be determined from the config.
            WeightsError: a folder is missing or incomplete.
        """
        for conditioner in self.conditioners.values():
            if isinstance(conditioner, T5GemmaConditioner):
                conditioner.load_text_encoder(model_dir, dtype=dtype, device=device)

    def forward(
        self, metadata: Sequence[Mapping[str, Any]], device: str | torch.device | None = None
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Run each conditioner on its field of every item.

        Args:
            metadata: B mappings, e.g. ``{"prompt": "...", "seconds_total": 30.0}``.
            device: where the outputs go.

        Returns:
            ``{id: (embeddings, mask)}``.

        Raises:
            ValueError: an item lacks a conditioner's field.
        """
        outputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for cid, conditioner in self.conditioners.items():
            missing = [i for i, item in enumerate(metadata) if cid not in item]
            if missing:
                raise ValueError(f"conditioning items {missing} have no {cid!r} field")
            outputs[cid] = conditioner([item[cid] for item in metadata], device)
        return outputs


@dataclass(frozen=True)
class ConditioningInputs:
    """DiT conditioning assembled from conditioner outputs (reference §4.3).

    Attributes:
        cross_attn_cond: (B, N, D) tokens, concatenated in ``cross_attention_cond_ids`` order.
        cross_attn_mask: (B, N) bool (the DiT ignores it; negative prompts use it).
        global_cond: (B, D') concatenated ``global_cond_ids`` embeddings.
    """

    cross_attn_cond: torch.Tensor
    cross_attn_mask: torch.Tensor
    global_cond: torch.Tensor


def assemble_conditioning(
    outputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    cross_attention_ids: Sequence[str],
    global_cond_ids: Sequence[str],
) -> ConditioningInputs:
    """Concatenate conditioner outputs into the DiT inputs, as the official wrapper does.

    Cross tokens are joined along the sequence (a 2-D output counts as one token); global inputs
    along channels, with a length-1 sequence squeezed: SA3 gives
    ``cross = [prompt (256) ; seconds (1)]`` and ``global = seconds``.
    """
    tokens, masks = [], []
    for cid in cross_attention_ids:
        emb, mask = outputs[cid]
        if emb.dim() == 2:
            emb, mask = emb[:, None, :], mask[:, None]
        tokens.append(emb)
        masks.append(mask.to(torch.bool))
    glob = torch.cat([outputs[cid][0] for cid in global_cond_ids], dim=-1)
    if glob.dim() == 3:
        glob = glob.squeeze(1)
    return ConditioningInputs(torch.cat(tokens, dim=1), torch.cat(masks, dim=1), glob)
