"""Memory on paper: the full-size released models built on the meta device, each profile's weights per device, the
largest activations and the expected peak for one request size (`python -m vino_app plan`).

Weights are exact byte counts of the meta models (bitsandbytes NF4: 4 bits + one float32 absmax per 64 weights;
int8: 1 byte + one float32 scale per row; FP8 storage: 1 byte per Linear weight, an upper bound since layerwise
casting stores convolutions and biases in 1 byte too; other tensors in the profile's dtype). Activations are
estimates, stated per formula below; the studio's estimate uses the same `plan_request`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from torch import nn

from .memory import PROFILES, MemoryProfile

GIB = 2**30
RELEASED = Path(__file__).with_name("configs") / "released.json"
NF4_BLOCK = 64
# Bytes alive per token per model width at a block's peak: the residual stream, q/k/v, the attention output and
# the 4x MLP hidden before and after the activation (1 + 3 + 1 + 4 + 4), plus the modulated copy: 14 copies.
MMDIT_COPIES = 14
VLM_COPIES = 14
VAE_DECODE_COPIES = 3  # a ResNet block's input, its hidden and output at full resolution, at the first width
VAE_TILE = (16, 256, 256)  # diffusers' HunyuanVideo VAE tile: frames, height, width (pixels)
VLM_IMAGE_TOKENS = 640 * 640 // (32 * 32)  # a reference at the release's area, after the 2x2 merge
CONTEXT_GIB = 0.6  # CUDA context and allocator slack
PROFILE_BUDGET_GIB = {"24gb": 24.0, "16gb": 16.0, "8gb": 8.0}
MARGIN = 0.9  # a profile's peak must stay under 90 % of its name


@dataclass(frozen=True)
class ModelFootprint:
    """Bytes of one model in each storage mode and its largest offload unit."""

    params: int
    bytes: dict[str | None, float]  # None (16-bit), "nf4", "int8", "fp8"
    largest_block: float  # 16-bit bytes of the largest transformer block (block-level offload)
    largest_leaf: float  # 16-bit bytes of the largest leaf module (leaf-level offload)


def footprint(model: nn.Module, blocks: list[nn.Module], skip: tuple[str, ...] = ()) -> ModelFootprint:
    """Byte counts of `model` (meta or real); Linear layers named in `skip` stay unquantized (transformers keeps
    the tied `lm_head`)."""
    linear = [m.weight for n, m in model.named_modules() if isinstance(m, nn.Linear) and not n.endswith(skip)]
    linear_ids = {id(w) for w in linear}
    params = list({id(p): p for p in model.parameters()}.values())
    other = sum(p.numel() for p in params if id(p) not in linear_ids)
    quantized = sum(w.numel() for w in linear)
    rows = sum(w.shape[0] for w in linear)
    sizes = {
        None: 2.0 * (other + quantized),
        "nf4": 2.0 * other + quantized / 2 + 4 * quantized / NF4_BLOCK,
        "int8": 2.0 * other + quantized + 4 * rows,
        "fp8": 2.0 * other + quantized,
    }
    size = lambda m: 2.0 * sum(p.numel() for p in m.parameters())  # noqa: E731
    leaves = [m for m in model.modules() if not list(m.children())]
    return ModelFootprint(sum(p.numel() for p in params), sizes, max(map(size, blocks)), max(map(size, leaves)))


def footprints_from_configs(transformer_config: dict, vlm_config, vae_config: dict) -> dict:
    """Footprints of the MMDiT, the VLM and the VAE built from their configs on the meta device, and the widths the
    activation estimates use. Exact for a loaded (even quantized) pipeline too: only the configs are read."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLHunyuanVideo
    from transformers import Qwen3VLForConditionalGeneration

    from .transformer import VinoTransformer3DModel

    with init_empty_weights():
        mmdit = VinoTransformer3DModel.from_config(transformer_config)
        vlm = Qwen3VLForConditionalGeneration(vlm_config)
        vae = AutoencoderKLHunyuanVideo.from_config(vae_config)
    text = vlm_config.text_config
    return {
        "transformer": footprint(mmdit, [*mmdit.transformer_blocks, *mmdit.single_transformer_blocks]),
        "vlm": footprint(vlm, list(vlm.model.language_model.layers), skip=("lm_head",)),
        "vae": footprint(vae, [vae.encoder, vae.decoder]),
        "widths": {
            "inner": mmdit.config.num_attention_heads * mmdit.config.attention_head_dim,
            "vlm": text.hidden_size,
            "vlm_layers": text.num_hidden_layers + 1,  # every hidden state is returned
            "vae": vae.config.block_out_channels[0],
        },
    }


@lru_cache(maxsize=1)
def released_footprints() -> dict:
    """`footprints_from_configs` of the released MMDiT, Qwen3-VL-4B and VAE (`configs/released.json`)."""
    from transformers import Qwen3VLConfig

    config = json.loads(RELEASED.read_text())
    return footprints_from_configs(config["transformer"], Qwen3VLConfig(**config["vlm"]), config["vae"])


@dataclass(frozen=True)
class MemoryPlan:
    profile: str
    device: str
    tokens: int  # MMDiT tokens per forward (target + references + text)
    weights_gib: dict[str, float]  # on the device while that model runs
    activations_gib: dict[str, float]
    peak_gib: float
    budget_gib: float | None

    def table(self) -> str:
        lines = [f"profile {self.profile} on {self.device}: {self.tokens:,} MMDiT tokens per forward"]
        lines.append(f"  {'phase':<12}{'weights GiB':>12}{'activations GiB':>17}{'total GiB':>11}")
        for phase in self.weights_gib:
            w, a = self.weights_gib[phase], self.activations_gib[phase]
            lines.append(f"  {phase:<12}{w:>12.1f}{a:>17.1f}{w + a:>11.1f}")
        budget = f" (budget {self.budget_gib:.0f} GiB x {MARGIN})" if self.budget_gib else ""
        lines.append(f"  expected peak {self.peak_gib:.1f} GiB incl. {CONTEXT_GIB} GiB context{budget}")
        return "\n".join(lines)

    @property
    def fits(self) -> bool:
        return self.budget_gib is None or self.peak_gib <= MARGIN * self.budget_gib


def plan_request(
    profile: MemoryProfile, height: int, width: int, frames: int, num_images: int = 0, text_tokens: int = 300
) -> MemoryPlan:
    """`plan_memory` of one request to the released models: `num_images` references at the output area and
    `text_tokens` of prompt (queries included)."""
    latent = ((frames - 1) // 4 + 1) * (height // 16) * (width // 16)
    tokens = latent * (1 + num_images) + text_tokens + 2 * num_images
    vlm_tokens = text_tokens + num_images * VLM_IMAGE_TOKENS
    return plan_memory(profile, released_footprints(), tokens, vlm_tokens, frames * height * width)


def plan_memory(profile: MemoryProfile, models: dict, tokens: int, vlm_tokens: int, pixels: int) -> MemoryPlan:
    """Per-phase device memory: `models` from `footprints_from_configs`, `tokens` per MMDiT forward, `vlm_tokens`
    per VLM pass, `pixels` = frames x height x width of the output."""
    widths = models["widths"]
    scale = profile.dtype.itemsize / 2  # footprints are in 16-bit bytes
    transformer_mode = "fp8" if profile.storage_dtype is not None else profile.quantize_transformer
    mode = {"transformer": transformer_mode, "vlm": profile.quantize_vlm, "vae": None}
    stored = {k: models[k].bytes[mode[k]] * (scale if mode[k] is None else 1) for k in mode}
    phase_model = {"VLM encode": "vlm", "MMDiT step": "transformer", "VAE decode": "vae"}
    weights = {}
    for phase, name in phase_model.items():
        if profile.offload is None:
            weights[phase] = sum(stored.values())
        elif profile.offload == "model":  # int8 models cannot be moved: they stay on the GPU
            resident = sum(stored[k] for k in stored if k != name and mode[k] == "int8")
            weights[phase] = stored[name] + resident
        else:  # block-level MMDiT (two blocks: the running one and the next), leaf-level VLM and VAE
            unit = models[name].largest_block if name == "transformer" else models[name].largest_leaf
            weights[phase] = 2 * unit * scale
    decoded = min(pixels, VAE_TILE[0] * VAE_TILE[1] * VAE_TILE[2]) if profile.vae_tiling else pixels
    activations = {
        "VLM encode": vlm_tokens * widths["vlm"] * (VLM_COPIES + widths["vlm_layers"]) * 2 * scale,
        "MMDiT step": tokens * widths["inner"] * MMDIT_COPIES * 2 * scale,
        "VAE decode": decoded * widths["vae"] * VAE_DECODE_COPIES * 2 * scale + pixels * 3 * 4,
    }
    weights_gib = {k: v / GIB for k, v in weights.items()}
    activations_gib = {k: v / GIB for k, v in activations.items()}
    peak = max(weights_gib[k] + activations_gib[k] for k in weights_gib) + CONTEXT_GIB
    device = "cpu (host RAM)" if profile.name == "cpu" else "cuda"
    budget = PROFILE_BUDGET_GIB.get(profile.name)
    return MemoryPlan(profile.name, device, tokens, weights_gib, activations_gib, peak, budget)


def main(args) -> int:
    """`plan`: print the plan of one profile (or all)."""
    names = list(PROFILES) if args.profile == "all" else [args.profile]
    for name in names:
        plan = plan_request(PROFILES[name], args.height, args.width, args.frames, args.images)
        print(plan.table() + ("" if plan.fits else "\n  DOES NOT FIT its name with the margin"))
    return 0
