"""SAME autoencoders (SAME-S and SAME-L) of Stable Audio 3 (reference §2).

Audio (B, 2, T) is cut into patches (B, 2*patch, T/patch), the encoder's Transformer
Resampling Block (TRB) appends one learned token to every group of ``stride`` patches and keeps
only that token after attention, a Linear maps it to the latent width and the soft-norm
bottleneck scales it. Decoding runs the mirror image: one latent token is followed by
``stride`` learned tokens (plus ``mask_noise`` noise), which become the output patches.

SAME-S attends inside fixed chunks, shifting the chunk borders by half a chunk for the second
half of the blocks; SAME-L attends in a sliding window of ``sliding_window * (stride + 1)``
tokens on each side. All randomness of decoding (the bottleneck noise, then the new-token
noise) comes from an explicit :class:`~sa3_studio.engine.noise.NoiseSource`.

Module and parameter names reproduce the official state-dict keys exactly (§2.10), so official
checkpoints load with ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sa3_studio.engine.models.same_blocks import (
    SameTransformerBlock,
    WNConv1d,
    run_blocks_banded,
    run_blocks_on_chunks,
)
from sa3_studio.engine.noise import NoiseSource
from sa3_studio.errors import ConfigError, GenerationError

__all__ = [
    "AudioAutoencoder",
    "PatchedPretransform",
    "SAMEDecoder",
    "SAMEEncoder",
    "SoftNormBottleneck",
    "TransformerResamplingBlock",
    "pad_audio_batch",
]

# Tokens of activations processed at once inside a TRB (chunks for SAME-S, query tiles with a
# key halo for SAME-L). Bounds CPU memory on long inputs; results do not depend on it beyond
# float rounding.
DEFAULT_MAX_TOKENS = 4096

# Config fields the official code accepts and ignores at inference (training switches, or keys
# swallowed by its **kwargs).
_IGNORED_FIELDS = frozenset({"checkpointing", "conv_bias", "mapping_style", "use_snake"})


def _pad_to_multiple(x: torch.Tensor, multiple: int, dim: int) -> torch.Tensor:
    """Zero-pad ``dim`` at the end to a multiple of ``multiple``."""
    extra = (-x.shape[dim]) % multiple
    if extra == 0:
        return x
    shape = list(x.shape)
    shape[dim] = extra
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


def _need_noise(noise: NoiseSource | None, what: str) -> NoiseSource:
    if noise is None:
        raise GenerationError(
            f"The autoencoder draws random noise in its {what}, but no noise source was given; "
            "pass noise=GeneratorNoise(seed) (or the pipeline's noise source)."
        )
    return noise


class TransformerResamplingBlock(nn.Module):
    """One SAME resampling stage (reference §2.4-§2.7).

    Encoder direction: (B, C_in, P) patches -> (B, D, P/stride) tokens. Decoder direction:
    (B, D, L) tokens -> (B, C_out, L*stride). ``D`` is ``out_channels`` for the encoder and
    ``in_channels`` for the decoder.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        *,
        direction: str,
        transformer_depth: int,
        dim_heads: int,
        differential: bool,
        dyt: bool,
        variable_stride: bool,
        chunk_size: int,
        chunk_midpoint_shift: bool,
        sliding_window: Sequence[int] | None,
        conv_mapping: bool,
        mask_noise: float,
        sinusoidal_blocks: int = 0,
    ) -> None:
        super().__init__()
        if direction not in ("encoder", "decoder"):
            raise ValueError(f"direction must be 'encoder' or 'decoder', got {direction!r}")
        if sliding_window is None and chunk_size % stride != 0:
            raise ConfigError(
                f"SAME chunk_size {chunk_size} is not a multiple of the stride {stride}; "
                "fix the autoencoder config."
            )
        self.direction = direction
        self.stride = stride
        self.chunk_size = chunk_size
        self.chunk_midpoint_shift = chunk_midpoint_shift
        self.mask_noise = float(mask_noise)
        self.variable_stride = variable_stride
        self.window: tuple[int, int] | None = (
            None
            if sliding_window is None
            else (int(sliding_window[0]) * (stride + 1), int(sliding_window[1]) * (stride + 1))
        )
        self.max_tokens = DEFAULT_MAX_TOKENS
        width = out_channels if direction == "encoder" else in_channels
        self.mapping: nn.Module = (
            WNConv1d(in_channels, out_channels, 3 if conv_mapping else 1, bias=True)
            if in_channels != out_channels
            else nn.Identity()
        )
        self.transformers = nn.ModuleList(
            SameTransformerBlock(
                width,
                dim_heads,
                differential=differential,
                dyt=dyt,
                # Official rule (fact 16): block i is sinusoidal iff depth - i < sinusoidal_blocks.
                sinusoidal=(transformer_depth - i) < sinusoidal_blocks,
            )
            for i in range(transformer_depth)
        )
        new_count = 1 if (variable_stride or direction == "encoder") else stride
        self.new_tokens = nn.Parameter(torch.zeros(1, new_count, width))

    @property
    def needs_noise(self) -> bool:
        """Whether a forward pass draws new-token noise."""
        return self.mask_noise > 0 and len(self.transformers) > 0

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        """Run the blocks over the token sequence ``x`` (B, N, D)."""
        if self.window is not None:
            return run_blocks_banded(self.transformers, x, self.window, self.max_tokens)
        batch, n_tokens, dim = x.shape
        chunk = self.chunk_size + self.chunk_size // self.stride  # e.g. 32 + 2 = 34 tokens
        if not self.chunk_midpoint_shift:
            xc = x.reshape(batch * (n_tokens // chunk), chunk, dim)
            xc = run_blocks_on_chunks(self.transformers, xc, self.max_tokens)
            return xc.reshape(batch, n_tokens, dim)
        split = len(self.transformers) // 2
        shift = chunk // 2
        xc = x.reshape(batch * (n_tokens // chunk), chunk, dim)
        xc = run_blocks_on_chunks(self.transformers[:split], xc, self.max_tokens)
        x = xc.reshape(batch, n_tokens, dim)
        # Duplicate the first and last half-chunk so the chunk borders move by half a chunk.
        x = torch.cat([x[:, :shift], x, x[:, -shift:]], dim=1)
        n_shifted = x.shape[1]
        xc = x.reshape(batch * (n_shifted // chunk), chunk, dim)
        xc = run_blocks_on_chunks(self.transformers[split:], xc, self.max_tokens)
        return xc.reshape(batch, n_shifted, dim)[:, shift:-shift]

    def forward(self, x: torch.Tensor, noise: NoiseSource | None = None) -> torch.Tensor:
        """Resample ``x`` (B, C, T); ``noise`` feeds the new-token noise when mask_noise > 0."""
        batch = x.shape[0]
        encoder = self.direction == "encoder"
        if not self.transformers:
            mapped: torch.Tensor = self.mapping(x)
            return mapped
        if encoder:
            # Pad before the mapping so padded zeros are projected like the official model.
            x = _pad_to_multiple(x, self.stride if self.window is not None else self.chunk_size, -1)
            x = self.mapping(x)
        x = x.transpose(1, 2)  # (B, T, D)
        if not encoder and self.window is None:
            x = _pad_to_multiple(x, self.chunk_size // self.stride, 1)
        in_group = self.stride if encoder else 1
        out_group = 1 if encoder else self.stride
        dim = x.shape[-1]
        groups = x.reshape(-1, in_group, dim)  # (B*n, in_group, D)
        new = self.new_tokens.expand(groups.shape[0], out_group, dim)
        if self.mask_noise > 0:
            source = _need_noise(noise, "resampling tokens")
            new = (
                new + source.randn(new.shape, dtype=new.dtype, device=new.device) * self.mask_noise
            )
        seq = torch.cat([groups, new.to(groups.dtype)], dim=1)  # (B*n, in+out, D)
        del groups, new  # long inputs: free these before the attention stack runs
        group_len = seq.shape[1]
        seq = self._attend(seq.reshape(batch, -1, dim))  # (B, n*(in+out), D)
        kept = seq.reshape(-1, group_len, dim)[:, -out_group:]  # (B*n, out_group, D)
        x = kept.reshape(batch, -1, dim).transpose(1, 2)  # (B, D, n*out_group)
        if not encoder:
            x = self.mapping(x)
        return x


class _Transpose(nn.Module):
    """Swap the last two axes (official layers.1/3 of the encoder, 0/2 of the decoder)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-1, -2)


class SAMEEncoder(nn.Module):
    """Patches (B, in_channels, P) -> pre-bottleneck latents (B, latent_dim, P/prod(strides))."""

    def __init__(
        self,
        *,
        in_channels: int,
        channels: int,
        c_mults: Sequence[int],
        strides: Sequence[int],
        latent_dim: int,
        transformer_depths: Sequence[int],
        differential: bool = True,
        dyt: bool = True,
        dim_heads: int = 128,
        variable_stride: bool = False,
        chunk_size: int = 32,
        chunk_midpoint_shift: bool = False,
        sliding_window: Sequence[int] | None = None,
        conv_mapping: bool = False,
        mask_noise: float = 0.0,
        checkpointing: bool = False,
        conv_bias: bool | None = None,
    ) -> None:
        """Build from ``encoder.config`` fields; ``checkpointing`` and ``conv_bias`` are ignored."""
        super().__init__()
        del checkpointing, conv_bias  # training-only / unused by the official model
        if not (len(c_mults) == len(strides) == len(transformer_depths)):
            raise ConfigError(
                "SAME encoder c_mults, strides and transformer_depths must have the same "
                "length; fix the autoencoder config."
            )
        dims = [in_channels] + [m * channels for m in c_mults]
        layers: list[nn.Module] = [
            TransformerResamplingBlock(
                dims[i],
                dims[i + 1],
                strides[i],
                direction="encoder",
                transformer_depth=transformer_depths[i],
                dim_heads=dim_heads,
                differential=differential,
                dyt=dyt,
                variable_stride=variable_stride,
                chunk_size=chunk_size,
                chunk_midpoint_shift=chunk_midpoint_shift,
                sliding_window=sliding_window,
                conv_mapping=conv_mapping,
                mask_noise=mask_noise,
            )
            for i in range(len(c_mults))
        ]
        layers += [_Transpose(), nn.Linear(dims[-1], latent_dim), _Transpose()]
        self.layers = nn.ModuleList(layers)

    @property
    def needs_noise(self) -> bool:
        """Whether encoding draws noise (only if a config sets encoder mask_noise > 0)."""
        return any(isinstance(m, TransformerResamplingBlock) and m.needs_noise for m in self.layers)

    def forward(self, x: torch.Tensor, noise: NoiseSource | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, noise) if isinstance(layer, TransformerResamplingBlock) else layer(x)
        return x


class SAMEDecoder(nn.Module):
    """Latents (B, latent_dim, L) -> patches (B, out_channels, L*prod(strides)) (maybe padded)."""

    def __init__(
        self,
        *,
        out_channels: int,
        channels: int,
        c_mults: Sequence[int],
        strides: Sequence[int],
        latent_dim: int,
        transformer_depths: Sequence[int],
        sinusoidal_blocks: Sequence[int] | None = None,
        differential: bool = True,
        dyt: bool = True,
        dim_heads: int = 128,
        variable_stride: bool = False,
        chunk_size: int = 32,
        chunk_midpoint_shift: bool = False,
        sliding_window: Sequence[int] | None = None,
        conv_mapping: bool = False,
        mask_noise: float = 0.0,
        checkpointing: bool = False,
        conv_bias: bool | None = None,
    ) -> None:
        """Build from ``decoder.config`` fields; ``checkpointing`` and ``conv_bias`` are ignored."""
        super().__init__()
        del checkpointing, conv_bias  # training-only / unused by the official model
        depth = len(c_mults)
        if not (len(strides) == len(transformer_depths) == depth):
            raise ConfigError(
                "SAME decoder c_mults, strides and transformer_depths must have the same "
                "length; fix the autoencoder config."
            )
        sinusoidal = list(sinusoidal_blocks) if sinusoidal_blocks is not None else [0] * depth
        if len(sinusoidal) != depth:
            raise ConfigError(
                "SAME decoder sinusoidal_blocks must have one entry per stage; fix the "
                "autoencoder config."
            )
        dims = [out_channels] + [m * channels for m in c_mults]
        layers: list[nn.Module] = [_Transpose(), nn.Linear(latent_dim, dims[-1]), _Transpose()]
        for i in range(depth, 0, -1):
            layers.append(
                TransformerResamplingBlock(
                    dims[i],
                    dims[i - 1],
                    strides[i - 1],
                    direction="decoder",
                    transformer_depth=transformer_depths[i - 1],
                    dim_heads=dim_heads,
                    differential=differential,
                    dyt=dyt,
                    variable_stride=variable_stride,
                    chunk_size=chunk_size,
                    chunk_midpoint_shift=chunk_midpoint_shift,
                    sliding_window=sliding_window,
                    conv_mapping=conv_mapping,
                    mask_noise=mask_noise,
                    sinusoidal_blocks=sinusoidal[i - 1],
                )
            )
        self.layers = nn.ModuleList(layers)

    @property
    def needs_noise(self) -> bool:
        """Whether decoding draws new-token noise."""
        return any(isinstance(m, TransformerResamplingBlock) and m.needs_noise for m in self.layers)

    def forward(self, x: torch.Tensor, noise: NoiseSource | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, noise) if isinstance(layer, TransformerResamplingBlock) else layer(x)
        return x


class SoftNormBottleneck(nn.Module):
    """Soft-normalisation bottleneck (reference §2.9).

    Encode: ``(h * scaling_factor + bias) / running_std``. Decode: ``z * running_std`` plus,
    with ``noise_regularize``, ``eps * running_std * 1e-3`` (the eval-mode scale).
    """

    def __init__(
        self,
        *,
        dim: int,
        noise_augment_dim: int = 0,
        noise_regularize: bool = False,
        auto_scale: bool = False,
        freeze: bool = False,
    ) -> None:
        """Build from the ``bottleneck.config`` fields (``freeze`` only matters in training)."""
        super().__init__()
        del freeze
        self.noise_augment_dim = noise_augment_dim
        self.noise_regularize = noise_regularize
        self.scaling_factor = nn.Parameter(torch.ones(1, dim, 1), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(1, dim, 1), requires_grad=False)
        self.noise_scaling_factor = nn.Parameter(
            torch.ones(1, noise_augment_dim, 1), requires_grad=False
        )
        self.running_std: nn.Parameter | None = (
            nn.Parameter(torch.ones(1), requires_grad=False) if auto_scale else None
        )

    @property
    def needs_noise(self) -> bool:
        """Whether decoding draws noise."""
        return self.noise_regularize or self.noise_augment_dim > 0

    def encode(self, h: torch.Tensor) -> torch.Tensor:  # (B, dim, L) -> (B, dim, L)
        """Scale encoder output to latents."""
        z = h * self.scaling_factor + self.bias
        if self.running_std is not None:
            z = z / self.running_std
        return z

    def decode(self, z: torch.Tensor, noise: NoiseSource | None) -> torch.Tensor:
        """Undo the running-std scaling and add the regularising noise (draw 1 of a decode)."""
        x = z * self.running_std if self.running_std is not None else z
        if self.noise_regularize:
            scale = (
                self.running_std if self.running_std is not None else x.std(dim=-1, keepdim=True)
            )
            eps = _need_noise(noise, "bottleneck").randn(x.shape, dtype=x.dtype, device=x.device)
            x = x + eps * scale * 1e-3
        if self.noise_augment_dim > 0:
            shape = (x.shape[0], self.noise_augment_dim, x.shape[-1])
            aug = _need_noise(noise, "bottleneck").randn(shape, dtype=x.dtype, device=x.device)
            x = torch.cat([x, self.noise_scaling_factor * aug], dim=1)
        return x


class PatchedPretransform(nn.Module):
    """Parameter-free patching: (B, C, T) <-> (B, C*patch, T/patch), channel index c*patch+h."""

    def __init__(self, *, patch_size: int, channels: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.channels = channels

    def encode(self, audio: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, C*p, ceil(T/p))
        """Zero-pad to a multiple of the patch size and fold samples into channels."""
        x = _pad_to_multiple(audio, self.patch_size, -1)
        b, c, t = x.shape
        p = self.patch_size
        return x.reshape(b, c, t // p, p).permute(0, 1, 3, 2).reshape(b, c * p, t // p)

    def decode(self, patches: torch.Tensor) -> torch.Tensor:  # (B, C*p, L) -> (B, C, L*p)
        """Unfold channels back into samples."""
        b, cp, n = patches.shape
        p = self.patch_size
        return patches.reshape(b, cp // p, p, n).permute(0, 1, 3, 2).reshape(b, cp // p, n * p)


def _chunk_starts(total: int, chunk: int, hop: int) -> list[int]:
    """Official chunk starts: every ``hop`` while a full chunk fits, plus one at the end."""
    starts = list(range(0, total - chunk + 1, hop))
    if starts[-1] != total - chunk:
        starts.append(total - chunk)
    return starts


def _check_chunking(chunk_size: int, overlap: int) -> None:
    if chunk_size <= 0 or overlap < 0 or overlap >= chunk_size:
        raise GenerationError(
            f"Chunked autoencoding needs 0 <= overlap < chunk_size, got chunk_size={chunk_size} "
            f"and overlap={overlap}; choose a smaller overlap."
        )


def _kwargs_for(cls: type, fields: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Constructor kwargs from config ``fields``; unknown fields are a ConfigError."""
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(fields) - accepted - _IGNORED_FIELDS)
    if unknown:
        raise ConfigError(
            f"The autoencoder config section '{where}' has unknown fields {unknown}; "
            "remove them or use a config made for this version."
        )
    return {k: v for k, v in fields.items() if k in accepted}


def _section(model: Mapping[str, Any], name: str, expected_type: str) -> Mapping[str, Any]:
    block = model.get(name)
    if not isinstance(block, Mapping) or not isinstance(block.get("config"), Mapping):
        raise ConfigError(
            f"The autoencoder config has no '{name}' section with a 'config' object; "
            "check that the file is a Stable Audio 3 model_config.json."
        )
    if block.get("type") != expected_type:
        raise ConfigError(
            f"The autoencoder '{name}' type is {block.get('type')!r}, but only "
            f"{expected_type!r} is supported; use a SAME autoencoder config."
        )
    config: Mapping[str, Any] = block["config"]
    return config


class AudioAutoencoder(nn.Module):
    """A SAME autoencoder: pretransform (patching), encoder, bottleneck, decoder.

    Attributes ``encoder``, ``decoder`` and ``bottleneck`` carry the parameters; their names
    are the official top-level key prefixes.
    """

    def __init__(
        self,
        *,
        encoder: SAMEEncoder,
        decoder: SAMEDecoder,
        bottleneck: SoftNormBottleneck,
        pretransform: PatchedPretransform,
        latent_dim: int,
        downsampling_ratio: int,
        io_channels: int = 2,
        sample_rate: int | None = None,
        soft_clip: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.bottleneck = bottleneck
        self.pretransform = pretransform
        self.latent_dim = latent_dim
        self.downsampling_ratio = downsampling_ratio
        self.io_channels = io_channels
        self.sample_rate = sample_rate
        self.soft_clip = soft_clip

    @classmethod
    def from_config_dict(
        cls, model_dict: Mapping[str, Any], *, sample_rate: int | None = None
    ) -> AudioAutoencoder:
        """Build from an autoencoder config dict.

        Args:
            model_dict: The ``model`` object of a standalone SAME config, or
                ``model.pretransform.config`` of a full SA3 config (a full ``model`` object
                whose ``pretransform`` is an autoencoder is accepted too).
            sample_rate: The config's top-level ``sample_rate``, kept for reference.

        Raises:
            ConfigError: A section is missing, has an unsupported type or unknown fields.
        """
        if "encoder" not in model_dict:
            outer = model_dict.get("pretransform")
            if isinstance(outer, Mapping) and outer.get("type") == "autoencoder":
                inner = outer.get("config")
                if isinstance(inner, Mapping):
                    model_dict = inner
        enc = _section(model_dict, "encoder", "same")
        dec = _section(model_dict, "decoder", "same")
        bott = _section(model_dict, "bottleneck", "softnorm")
        patch = _section(model_dict, "pretransform", "patched")
        for key in ("latent_dim", "downsampling_ratio"):
            if not isinstance(model_dict.get(key), int):
                raise ConfigError(
                    f"The autoencoder config needs an integer '{key}'; add it to the config."
                )
        decoder_block = model_dict["decoder"]
        return cls(
            encoder=SAMEEncoder(**_kwargs_for(SAMEEncoder, enc, "encoder")),
            decoder=SAMEDecoder(**_kwargs_for(SAMEDecoder, dec, "decoder")),
            bottleneck=SoftNormBottleneck(**_kwargs_for(SoftNormBottleneck, bott, "bottleneck")),
            pretransform=PatchedPretransform(
                **_kwargs_for(PatchedPretransform, patch, "pretransform")
            ),
            latent_dim=int(model_dict["latent_dim"]),
            downsampling_ratio=int(model_dict["downsampling_ratio"]),
            io_channels=int(model_dict.get("io_channels", 2)),
            sample_rate=sample_rate,
            # The official factory reads soft_clip next to the decoder's type, not in its config.
            soft_clip=bool(decoder_block.get("soft_clip", False)),
        )

    @property
    def decode_needs_noise(self) -> bool:
        """Whether :meth:`decode` draws random noise (released SAME models: yes)."""
        return self.bottleneck.needs_noise or self.decoder.needs_noise

    @property
    def latent_multiple(self) -> int:
        """Latent counts the decoder handles without padding (chunk_size/stride for SAME-S)."""
        mult = 1
        for layer in self.decoder.layers:
            if isinstance(layer, TransformerResamplingBlock) and layer.window is None:
                mult = max(mult, layer.chunk_size // layer.stride)
        return mult

    def _check_audio(self, audio: torch.Tensor) -> None:
        if audio.dim() != 3 or audio.shape[1] != self.io_channels:
            raise GenerationError(
                f"The autoencoder expects audio shaped (batch, {self.io_channels}, samples), "
                f"got {tuple(audio.shape)}; convert the audio to {self.io_channels} channels."
            )

    def _check_latents(self, latents: torch.Tensor) -> None:
        if latents.dim() != 3 or latents.shape[1] != self.latent_dim or latents.shape[-1] == 0:
            raise GenerationError(
                f"The autoencoder expects latents shaped (batch, {self.latent_dim}, frames), "
                f"got {tuple(latents.shape)}; pass latents made for this model."
            )

    def encode(self, audio: torch.Tensor, *, noise: NoiseSource | None = None) -> torch.Tensor:
        """One encoder pass: (B, io_channels, T) -> latents (B, latent_dim, L).

        SAME-S pads the patches to a multiple of its chunk size, so L may round up (fact 11).
        ``noise`` is needed only if the encoder has mask_noise > 0 (not in released models).
        """
        self._check_audio(audio)
        patches = self.pretransform.encode(audio)  # (B, io*patch, P)
        h = self.encoder(patches, noise)  # (B, latent_dim, L)
        return self.bottleneck.encode(h)

    def decode(self, latents: torch.Tensor, *, noise: NoiseSource | None) -> torch.Tensor:
        """One decoder pass: latents (B, latent_dim, L) -> audio (B, io_channels, samples).

        Draws, in order, the bottleneck noise then the new-token noise from ``noise``. SAME-S
        pads L to a multiple of :attr:`latent_multiple` and returns the padded length.
        """
        self._check_latents(latents)
        h = self.bottleneck.decode(latents, noise)  # (B, latent_dim, L)
        patches = self.decoder(h, noise)  # (B, io*patch, L*stride)
        audio = self.pretransform.decode(patches)
        return torch.tanh(audio) if self.soft_clip else audio

    def encode_audio(
        self,
        audio: torch.Tensor,
        *,
        chunked: bool,
        chunk_size: int = 128,
        overlap: int = 32,
        noise: NoiseSource | None = None,
    ) -> torch.Tensor:
        """Encode audio, optionally in overlapping chunks (official scheme, reference §2.11).

        Args:
            audio: (B, io_channels, T), T a multiple of ``downsampling_ratio`` when chunked.
            chunked: Encode in chunks when the audio holds at least ``chunk_size`` latents.
            chunk_size: Chunk length in latent frames.
            overlap: Overlap between chunks in latent frames; half is trimmed per inner edge.
            noise: Only for encoders with mask_noise > 0.

        Returns:
            Latents (B, latent_dim, L); chunked output has L = T // downsampling_ratio.
        """
        self._check_audio(audio)
        ds = self.downsampling_ratio
        if not chunked or audio.shape[-1] < chunk_size * ds:
            return self.encode(audio, noise=noise)
        _check_chunking(chunk_size, overlap)
        total_latents = audio.shape[-1] // ds
        starts = _chunk_starts(audio.shape[-1], chunk_size * ds, (chunk_size - overlap) * ds)
        out: torch.Tensor | None = None
        half = overlap // 2
        for i, start in enumerate(starts):
            z = self.encode(audio[..., start : start + chunk_size * ds], noise=noise)
            if out is None:
                out = z.new_zeros(*z.shape[:-1], total_latents)
            last = i == len(starts) - 1
            at = total_latents - chunk_size if last else start // ds
            left = 0 if i == 0 else half
            right = chunk_size if last else chunk_size - half
            out[..., at + left : at + right] = z[..., left:right]
        assert out is not None
        return out

    def decode_audio(
        self,
        latents: torch.Tensor,
        *,
        noise: NoiseSource | None,
        chunked: bool,
        chunk_size: int = 128,
        overlap: int = 32,
    ) -> torch.Tensor:
        """Decode latents, optionally in overlapping chunks (official scheme, reference §2.11).

        Each chunk is decoded independently and draws its own noise (bottleneck, then new
        tokens). Later chunks overwrite earlier ones; no cross-fade.

        Args:
            latents: (B, latent_dim, L).
            noise: Source of the decoder's random draws (None only if the model draws none).
            chunked: Decode in chunks when L >= ``chunk_size``.
            chunk_size: Chunk length in latent frames.
            overlap: Overlap between chunks in latent frames; half is trimmed per inner edge.

        Returns:
            Audio (B, io_channels, samples); chunked output has L * downsampling_ratio samples.
        """
        self._check_latents(latents)
        if not chunked or latents.shape[-1] < chunk_size:
            return self.decode(latents, noise=noise)
        _check_chunking(chunk_size, overlap)
        ds = self.downsampling_ratio
        total = latents.shape[-1]
        total_samples = total * ds
        chunk_samples = chunk_size * ds
        half = (overlap // 2) * ds
        starts = _chunk_starts(total, chunk_size, chunk_size - overlap)
        out: torch.Tensor | None = None
        for i, start in enumerate(starts):
            audio = self.decode(latents[..., start : start + chunk_size], noise=noise)
            if out is None:
                out = audio.new_zeros(*audio.shape[:-1], total_samples)
            last = i == len(starts) - 1
            at = total_samples - chunk_samples if last else start * ds
            left = 0 if i == 0 else half
            right = chunk_samples if last else chunk_samples - half
            out[..., at + left : at + right] = audio[..., left:right]
        assert out is not None
        return out


def pad_audio_batch(audio: Sequence[torch.Tensor], *, channels: int, multiple: int) -> torch.Tensor:
    """Stack clips into a batch the encoder accepts, like the official encoder preprocessing.

    Every clip (C, T) or (T,) is zero-padded at the end to the longest clip, rounded up to a
    multiple of ``multiple`` (the downsampling ratio). Mono is duplicated to stereo, extra
    channels are dropped, and stereo is averaged when ``channels`` is 1. No resampling.

    Returns:
        (B, channels, T_padded), in the dtype and device of the first clip.
    """
    if not audio:
        raise GenerationError("No audio was given to encode; pass at least one clip.")
    clips = []
    for clip in audio:
        if clip.dim() == 3 and clip.shape[0] == 1:
            clip = clip[0]
        if clip.dim() == 1:
            clip = clip.unsqueeze(0)
        if clip.dim() != 2:
            raise GenerationError(
                f"Audio clips must be shaped (channels, samples), got {tuple(clip.shape)}; "
                "pass one clip per list entry."
            )
        clips.append(clip)
    longest = max(c.shape[-1] for c in clips)
    length = longest + (-longest) % multiple
    out = clips[0].new_zeros(len(clips), channels, length)
    for i, clip in enumerate(clips):
        if channels == 1:
            clip = clip.mean(0, keepdim=True)
        elif clip.shape[0] == 1:
            clip = clip.expand(channels, -1)
        clip = clip[:channels]
        out[i, : clip.shape[0], : clip.shape[-1]] = clip.to(out.dtype)
    return out
