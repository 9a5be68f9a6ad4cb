"""A cost estimate shown before running: tokens, forward passes, time and memory, and a cheaper setting when it will
not fit. Memory is `plan.plan_memory` of the loaded models (the `plan` command's computation). Time comes from the
floating-point work and a throughput (plus fixed seconds per request) that start from a rough per-device guess, are
measured on this machine at start-up (`Studio.calibrate`) and follow every generation."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..memory import MemoryProfile
from ..guidance import cfg_branches
from ..plan import plan_memory
from .settings import GenerationSettings

GIB = 1024**3
DEFAULT_THROUGHPUT = {"cpu": 2e10, "cuda": 2e14}  # floating-point operations per second, before calibration


@dataclass(frozen=True)
class ModelSize:
    """What the estimate needs to know about the loaded model (parameter counts, token geometry)."""

    transformer_params: int
    footprints: dict  # `plan.footprints_from_configs` of the loaded models: the memory estimate is the plan's
    num_layers: int  # dual- plus single-stream blocks
    inner_dim: int
    num_queries: int
    spatial_compression: int  # VAE x patch size, pixels per latent token side
    temporal_compression: int
    vlm_pixels_per_token: int  # VLM patch x merge size, squared


@dataclass(frozen=True)
class CostEstimate:
    text_tokens: int
    latent_tokens: int
    passes_per_step: int
    steps: int
    seconds: float
    memory_gib: float
    available_gib: float
    suggestion: str | None

    @property
    def fits(self) -> bool:
        return self.memory_gib <= self.available_gib

    def summary(self) -> str:
        """A markdown line for the UI."""
        line = (
            f"~{self.text_tokens + self.latent_tokens:,} tokens "
            f"({self.text_tokens:,} text, {self.latent_tokens:,} latent) · "
            f"{self.passes_per_step} forward pass{'es' if self.passes_per_step > 1 else ''}/step "
            f"x {self.steps} steps · "
            f"{_duration(self.seconds)} · ~{self.memory_gib:.1f} of {self.available_gib:.0f} GiB"
        )
        if not self.fits:
            line += f"  \n**Will probably not fit.** {self.suggestion or 'Choose a smaller memory profile.'}"
        return line


def _duration(seconds: float) -> str:
    """'under 0.1 s', 'about 2.3 s' or 'about 4 min'."""
    if seconds < 0.05:
        return "under 0.1 s"
    return f"about {seconds:.1f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def passes_per_step(settings: GenerationSettings, num_images: int, has_video: bool) -> int:
    """Forward passes per step: the pipeline's CFG branches for these settings."""
    settings = settings.resolve(num_images, has_video)
    base_image = settings.task_for(num_images, has_video).base_image
    return len(
        cfg_branches("", "", num_images, has_video, base_image, settings.guidance_scale, settings.image_guidance_scale)
    )


def estimate_cost(
    settings: GenerationSettings,
    prompt_tokens: int,
    num_images: int,
    video_frames: int | None,
    model: ModelSize,
    profile: MemoryProfile,
    available_gib: float,
    throughput: float,
    overhead_s: float = 0.0,
) -> CostEstimate:
    """Estimate one generation. `prompt_tokens`: the chat text's tokens without media; `video_frames`: frames of the
    attached video (None without one); `throughput`: floating-point operations per second of this machine;
    `overhead_s`: its seconds per request besides the steps (both measured by `Studio.calibrate`)."""
    settings = settings.resolve(num_images, video_frames is not None)
    area = settings.side**2
    frames = settings.num_frames if video_frames is None else min(settings.num_frames, video_frames)
    tokens_per_frame = max(area // model.spatial_compression**2, 1)
    latent_frames = lambda f: (f - 1) // model.temporal_compression + 1  # noqa: E731
    target = latent_frames(frames) * tokens_per_frame
    references = num_images * (tokens_per_frame + 2) + (0 if video_frames is None else target + 2)
    latent_tokens = target + references
    text_tokens = prompt_tokens + model.num_queries + num_images * area // model.vlm_pixels_per_token
    if video_frames is not None:
        text_tokens += 8 * area // model.vlm_pixels_per_token // 2  # 8 sampled frames, merged in time pairs

    tokens = text_tokens + latent_tokens
    passes = passes_per_step(settings, num_images, video_frames is not None)
    flops = 2 * model.transformer_params * tokens + 4 * model.num_layers * tokens**2 * model.inner_dim
    seconds = overhead_s + flops * passes * settings.num_inference_steps / throughput

    memory_gib = plan_memory(profile, model.footprints, tokens, text_tokens, frames * area).peak_gib
    estimate = CostEstimate(
        text_tokens, latent_tokens, passes, settings.num_inference_steps, seconds, memory_gib, available_gib, None
    )
    if estimate.fits:
        return estimate
    return replace(
        estimate,
        suggestion=_cheaper(
            settings, prompt_tokens, num_images, video_frames, model, profile, available_gib, throughput
        ),
    )


def _cheaper(
    settings, prompt_tokens, num_images, video_frames, model, profile, available_gib, throughput
) -> str | None:
    """The first of: fewer frames (halved, kept 4k+1), then smaller area (side - 128 each time), that fits."""
    candidates = []
    frames = settings.num_frames
    while frames > 1:
        frames = ((frames - 1) // 2 // 4) * 4 + 1
        candidates.append((replace(settings, num_frames=frames), f"frames {frames}"))
    side = settings.side
    while side > 256:
        side -= 128
        candidates.append((replace(settings, side=side), f"area {side}x{side}"))
    for candidate, label in candidates:
        if estimate_cost(
            candidate, prompt_tokens, num_images, video_frames, model, profile, available_gib, throughput
        ).fits:
            return f"Try {label}."
    return None

