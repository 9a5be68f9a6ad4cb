"""VinoPipeline: every VINO task from one call, chosen by the inputs.

media -> letterboxed references + interleaved prompt -> condition encoder (one pass per CFG branch)
-> reference latents (once) -> shifted flow-matching Euler with text / image CFG -> VAE decode -> frames.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from diffusers import AutoencoderKLHunyuanVideo, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.hooks import apply_group_offloading
from diffusers.utils import BaseOutput
from PIL import Image
from transformers import Qwen3VLProcessor

from .acceleration import (
    DEFAULT_ATTENTION,
    MASKED_ATTENTION_BACKENDS,
    cache_config,
    check_attention_backend,
    check_cache_mode,
)
from .checkpoint import resolve_checkpoint
from .convert import ConvertedCheckpoint, convert_checkpoint
from .encoder import (
    Conditioning,
    VinoConditionEncoder,
    batch_conditions,
    VlmVideo,
    read_video_once,
    read_vlm_video,
    vlm_inputs,
)
from .errors import GenerationCancelled, VinoInputError
from .guidance import Branch, cfg_branches, combine_guidance
from .hub_files import DEFAULT_BASE, DEFAULT_CHECKPOINT, DEFAULT_VLM
from .loading import load_condition_encoder, load_transformer, load_vae
from .media import ImageInput, letterbox, load_image, to_model_pixels
from .memory import MemoryProfile, default_profile_name, get_profile
from .prompt import REWRITE_SYSTEM_PROMPT, chat_text, default_negative_prompt, validate_references
from .sizes import size_for_area, validate_area, validate_num_frames, validate_size, video_frames_used
from .tasks import (
    SIZE_FROM_LAST_IMAGE,
    SIZE_FROM_VIDEO,
    IMAGE_FRAMES,
    STEPS,
    check_task,
    infer_task,
    release_cfg,
    task_for_label,
)
from .transformer import VinoTransformer3DModel

DEFAULT_IMAGE_SIZE = (640, 640)
DEFAULT_VIDEO_SIZE = (480, 848)
TIMESTEP_SCALE = 999.0
# Group offloading (the 8gb profile): a group is onloaded when its hook's module runs `forward`. The MMDiT runs
# through its own forward, block by block. The VLM's embeddings run outside its forward and the VAE runs through
# `encode` / `decode`: both are offloaded leaf by leaf, so each layer is onloaded when it runs (one ~9 GiB group
# otherwise, and a VAE group that is never onloaded).
GROUP_OFFLOAD_LEVELS = {"transformer": "block_level", "condition_encoder": "leaf_level", "vae": "leaf_level"}


def flow_sigmas(num_inference_steps: int) -> np.ndarray:
    """Unshifted sigmas linspace(1, 0, steps + 1) without the final 0 (the scheduler appends it and shifts)."""
    return np.linspace(1.0, 0.0, num_inference_steps + 1)[:-1]


@dataclass
class PreparedRequest:
    """A request resolved to model inputs: task, output size, references as pixels and as VLM inputs."""

    task: str
    num_frames: int
    height: int
    width: int
    images: list[Image.Image]  # letterboxed
    video_frames: np.ndarray | None  # uint8 [F, H, W, 3], resized and cropped
    vlm_video: VlmVideo | None  # the video as the VLM reads it, shared by all CFG branches


@dataclass
class VinoPipelineOutput(BaseOutput):
    """frames: uint8 `[F, H, W, 3]` (F = 1 for an image); task: the task label it ran as."""

    frames: np.ndarray
    task: str
    seed: int


class VinoPipeline(DiffusionPipeline):
    """VINO: unified image and video generation and editing with interleaved multimodal conditions."""

    model_cpu_offload_seq = "condition_encoder->transformer->vae"

    def __init__(
        self,
        condition_encoder: VinoConditionEncoder,
        processor: Qwen3VLProcessor,
        transformer: VinoTransformer3DModel,
        vae: AutoencoderKLHunyuanVideo,
        scheduler: FlowMatchEulerDiscreteScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(
            condition_encoder=condition_encoder,
            processor=processor,
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
        )
        self.memory_profile: MemoryProfile | None = None
        self.attention_backend = DEFAULT_ATTENTION
        self._interrupt = False

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str = DEFAULT_CHECKPOINT,
        vlm: str = DEFAULT_VLM,
        base: str = DEFAULT_BASE,
        memory_profile: str | MemoryProfile | None = None,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        cache_dir: str | Path | None = None,
    ) -> "VinoPipeline":
        """Load the released weights.

        checkpoint: hub repo id holding `vino.ckpt`, a folder with it, or the file itself. vlm: Qwen3-VL repo id or
        folder. base: HunyuanVideo repo id or folder (its `vae/` and `transformer/config.json` are used).
        memory_profile: 'full', '24gb', '16gb', '8gb', 'cpu', 'zerogpu' (default: chosen from the GPU's memory) or a
        `MemoryProfile`; the GPU profiles run on the CPU too when `device='cpu'` is passed (offloading then onloads
        to the CPU, bitsandbytes uses its CPU kernels).
        cache_dir: where the checkpoint is converted once into standard folders (default `$VINO_CACHE`, or
        `vino-converted` beside the hub cache).
        """
        profile = memory_profile
        if not isinstance(profile, MemoryProfile):
            profile = get_profile(profile or default_profile_name())
        if device is None and not torch.cuda.is_available() and profile.name != "cpu" and not profile.load_on_cpu:
            raise VinoInputError(
                f"memory profile '{profile.name}' needs a CUDA GPU and none was found; use 'cpu' on this machine "
                "(or pass device='cpu' to run it on the CPU anyway, slowly)"
            )
        converted = convert_checkpoint(resolve_checkpoint(checkpoint), str(base), str(vlm), cache_dir)
        for report in converted.reports():
            report.log()
        return cls.from_converted(converted, str(vlm), str(base), profile, device, dtype)

    @classmethod
    def from_converted(
        cls,
        converted: ConvertedCheckpoint,
        vlm: str,
        base: str,
        profile: MemoryProfile,
        device: str | None = None,
        dtype: torch.dtype | None = None,
    ) -> "VinoPipeline":
        """`from_pretrained` after the conversion: the three models from `converted` (and `vlm`, `base`) placed as
        `profile` says."""
        dtype = dtype or profile.dtype
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        load_device = "cpu" if profile.offload or profile.load_on_cpu else device
        # FP8 storage casts on the CPU first: the bf16 MMDiT never sits on the GPU whole
        transformer_device = device if profile.quantize_transformer else "cpu" if profile.storage_dtype else load_device
        transformer = load_transformer(converted.transformer, dtype, transformer_device, profile.quantize_transformer)
        encoder_device = device if profile.quantize_vlm else load_device
        encoder, processor = load_condition_encoder(
            converted, vlm, transformer.config, dtype, encoder_device, profile.quantize_vlm
        )
        vae = load_vae(base, dtype, load_device)
        pipe = cls(encoder, processor, transformer, vae, FlowMatchEulerDiscreteScheduler())
        pipe.apply_memory_profile(profile, device)
        return pipe

    def apply_memory_profile(self, profile: MemoryProfile, device: str) -> None:
        """Offload hooks (diffusers'), the move of CPU-built models and VAE tiling as the profile says."""
        self.memory_profile = profile
        if profile.storage_dtype is not None:
            self.store_transformer_as(profile.storage_dtype, profile.dtype)
            self.transformer.to(device)
        if profile.load_on_cpu:
            self.to(device)
        if profile.offload == "model":
            self.enable_model_cpu_offload(device=device)
        elif profile.offload == "group":
            onload = torch.device(device)
            for name, level in GROUP_OFFLOAD_LEVELS.items():
                blocks = {"num_blocks_per_group": 1} if level == "block_level" else {}
                apply_group_offloading(
                    getattr(self, name),
                    onload_device=onload,
                    offload_type=level,
                    use_stream=onload.type == "cuda",
                    **blocks,
                )
        if profile.vae_tiling:
            self.vae.enable_tiling()

    def store_transformer_as(self, storage_dtype: torch.dtype, compute_dtype: torch.dtype) -> None:
        """Keep the MMDiT's layer weights in `storage_dtype` and upcast each layer to `compute_dtype` while it runs
        (diffusers' layerwise casting; the patch embedder, norms and output projection stay in `compute_dtype`)."""
        if getattr(self.transformer, "is_quantized", False):
            raise VinoInputError("FP8 storage casts bf16 weights; the MMDiT here is already quantized (bitsandbytes)")
        if compute_dtype not in (torch.bfloat16, torch.float16):
            raise VinoInputError(f"FP8 storage computes in bf16 or fp16, not {compute_dtype}")
        self.transformer.enable_layerwise_casting(storage_dtype=storage_dtype, compute_dtype=compute_dtype)

    def set_attention_backend(self, backend: str) -> None:
        """Attention kernel of the MMDiT through diffusers' dispatcher ('native', 'flash', 'sage', ...:
        `acceleration.ATTENTION_BACKENDS`); refuses one a package or the device here lacks."""
        check_attention_backend(backend, self._execution_device)
        try:
            self.transformer.set_attention_backend(backend)
        except (RuntimeError, ValueError) as error:  # diffusers' requirement checks (package missing, too old)
            raise VinoInputError(f"attention backend '{backend}' is not usable here: {error}") from None
        self.attention_backend = backend

    def compile_blocks(self, **compile_kwargs) -> None:
        """Regional compilation: `torch.compile` of each repeated MMDiT block (diffusers' `compile_repeated_blocks`:
        the double- and single-stream blocks, patch embedder and token refiner), compiled on first use."""
        self.transformer.compile_repeated_blocks(**compile_kwargs)

    @contextmanager
    def step_cache(self, mode: str) -> Iterator[None]:
        """Step caching for one request (`acceleration.CACHE_MODES`): diffusers' cache hooks on the MMDiT, fresh
        state per request, removed afterwards."""
        config = cache_config(mode)
        if config is None:
            yield
            return
        self.transformer.enable_cache(config)
        try:
            yield
        finally:
            self.transformer.disable_cache()

    def branch_context(self, name: str):
        """The cache context of one CFG branch's MMDiT call (each branch keeps its own cached residuals)."""
        return self.transformer.cache_context(name) if self.transformer.is_cache_enabled else nullcontext()

    def enable_context_parallel(self, kind: str = "ulysses", degree: int | None = None) -> int:
        """Split the MMDiT's sequence between `degree` processes (default: all those `torchrun` / `accelerate
        launch` started) with diffusers' context parallelism: 'ulysses' (all-to-all over heads) or 'ring'
        (key/value blocks passed round; CUDA only). Every process must then run the same requests; the condition
        encoder and the VAE run in every process (replicated: identical inputs and seeds give identical inputs to
        the MMDiT, with no broadcast). The whole model stays on each GPU: offloading profiles are refused. Returns the
        degree."""
        from .parallel import enable_context_parallel

        if self.memory_profile is not None and self.memory_profile.offload:
            raise VinoInputError(
                f"context parallelism keeps the whole model on every GPU; memory profile '{self.memory_profile.name}' "
                "offloads it: use 'full'"
            )
        return enable_context_parallel(self.transformer, kind, degree)

    # ------------------------------------------------------------------ request preparation

    def prepare_request(
        self,
        images: Sequence[ImageInput],
        video: str | None,
        task: str | None,
        num_frames: int,
        height: int | None,
        width: int | None,
        area: int | None,
        aspect: float | None,
    ) -> PreparedRequest:
        """Read and size the references and decide the output geometry by the release's task-label rules."""
        validate_num_frames(num_frames)
        task = (
            check_task(task, len(images), video is not None)
            if task
            else infer_task(len(images), video is not None, num_frames)
        )
        if height is not None and width is not None:
            height, width = validate_size(height, width)
        else:
            default_h, default_w = DEFAULT_IMAGE_SIZE if num_frames == 1 else DEFAULT_VIDEO_SIZE
            area = validate_area(default_h * default_w if area is None else area)
            height, width = size_for_area(area, default_w / default_h if aspect is None else aspect)
        area = height * width
        refs = [letterbox(load_image(image), area) for image in images]
        frames = vlm_video = None
        if video is not None:  # decoded once, for the VAE and the VLM
            frames, vlm_video = read_video_once(video, num_frames, area)
            frames = frames[: video_frames_used(num_frames, len(frames))]
        row = task_for_label(task)
        if row.size_from == SIZE_FROM_LAST_IMAGE:
            width, height = refs[-1].size
            num_frames = num_frames if row.is_video else IMAGE_FRAMES  # the release forces F = 1 for ti2i
        elif row.size_from == SIZE_FROM_VIDEO:
            num_frames, height, width = frames.shape[:3]
        return PreparedRequest(task, num_frames, height, width, refs, frames, vlm_video)

    def encode_branch(self, branch: Branch, request: PreparedRequest) -> Conditioning:
        """Condition one CFG branch: the chat text with its references through the condition encoder."""
        text = chat_text(branch.text, len(branch.image_indices), branch.has_video)
        images = [request.images[i] for i in branch.image_indices]
        inputs = vlm_inputs(self.processor, text, images, request.vlm_video if branch.has_video else None)
        return self.condition_encoder(inputs, len(images))

    def encode_references(
        self, request: PreparedRequest, seed: int, device: torch.device | None = None
    ) -> list[torch.Tensor]:
        """VAE latents `[1, C, T', h, w]` of every reference (images, then the video), scaled, sampled from a
        generator seeded with `seed` in that order, on `device` (default: the execution device)."""
        generator = torch.Generator("cpu").manual_seed(seed)
        pixels = [to_model_pixels(image) for image in request.images]
        if request.video_frames is not None:
            pixels.append(to_model_pixels(request.video_frames))
        device, dtype = device or self._execution_device, self.vae.dtype
        scale = self.vae.config.scaling_factor
        return [self.vae.encode(p.to(device, dtype)).latent_dist.sample(generator=generator) * scale for p in pixels]

    def initial_noise(self, request: PreparedRequest, seed: int, device: torch.device | None = None) -> torch.Tensor:
        """`randn([1, C, (F-1)/4+1, H/8, W/8])` drawn in bfloat16 from a CPU generator seeded with `seed`, as the
        release draws it, then cast to float32."""
        shape = (
            1,
            self.transformer.config.in_channels,
            (request.num_frames - 1) // self.vae.config.temporal_compression_ratio + 1,
            request.height // self.vae.config.spatial_compression_ratio,
            request.width // self.vae.config.spatial_compression_ratio,
        )
        generator = torch.Generator("cpu").manual_seed(seed)
        return (
            torch.randn(shape, generator=generator, dtype=torch.bfloat16).float().to(device or self._execution_device)
        )

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents `[1, C, T', h, w]` -> uint8 frames `[F, H, W, 3]`."""
        pixels = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        pixels = (pixels[0].float() / 2 + 0.5).clamp(0, 1).mul(255).to(torch.uint8)
        return pixels.permute(1, 2, 3, 0).cpu().numpy()

    # ------------------------------------------------------------------ generation

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    def cancel(self) -> None:
        """Ask a running generation to stop after the current step (raises `GenerationCancelled` there)."""
        self._interrupt = True

    @torch.no_grad()
    def __call__(
        self,
        prompt: str,
        images: Sequence[ImageInput] = (),
        video: str | None = None,
        *,
        task: str | None = None,
        base_image: bool = False,
        num_frames: int = 1,
        height: int | None = None,
        width: int | None = None,
        area: int | None = None,
        aspect: float | None = None,
        num_inference_steps: int = STEPS,
        guidance_scale: float | None = None,
        image_guidance_scale: float | None = None,
        shift: float | None = None,
        negative_prompt: str | None = None,
        seed: int = 0,
        batch_cfg: bool = True,
        cache: str = "off",
        callback_on_step_end: Callable[["VinoPipeline", int, torch.Tensor, dict[str, Any]], dict | None] | None = None,
    ) -> VinoPipelineOutput:
        """Generate or edit an image (num_frames = 1) or a video (4k+1 frames).

        images / video: the references "Image 1".."Image n" and "Video 1" the prompt may name. task: a release task
        label; by default inferred from the inputs. base_image: the last image is the one being edited. Size:
        height x width, or `area` pixels at `aspect` = width / height (default 1 for images,
        848/480 for videos); image editing and
        image-to-video take the last image's size, video editing the video's size and length. guidance_scale / shift /
        image_guidance_scale left None take the release's defaults (`tasks.TASKS`).
        batch_cfg: run the CFG branches that see the same references as one batched forward (False: one forward per
        branch, as the release does; context parallelism always runs them one by one, and attention backends that
        take no mask those of different text lengths).
        cache: step caching, 'off' (every block every step), 'fast' or 'faster' (`acceleration.CACHE_MODES`); a
        cache keeps one context per CFG branch, so the branches then run one by one.
        callback_on_step_end(pipe, step, timestep, {"latents": ..., "denoised": ...}) runs after every step
        (`denoised`: the current estimate of the clean latents, decodable with `pipe.decode` for a preview);
        `pipe.cancel()` stops.
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise VinoInputError("the instruction is empty; describe what to generate")
        if num_inference_steps < 1:
            raise VinoInputError(f"steps must be at least 1, got {num_inference_steps}")
        validate_references(prompt, len(images), 0 if video is None else 1)
        if base_image and len(images) < 2:
            raise VinoInputError(
                "base-image editing needs a reference image and the base image last (two or more images)"
            )
        check_cache_mode(cache)
        self._interrupt = False
        request = self.prepare_request(images, video, task, num_frames, height, width, area, aspect)
        text_scale = release_cfg(request.num_frames) if guidance_scale is None else guidance_scale
        shift = release_cfg(request.num_frames) if shift is None else shift
        if image_guidance_scale is None:
            image_guidance_scale = task_for_label(request.task, base_image).image_cfg
        negative = default_negative_prompt(request.num_frames) if negative_prompt is None else negative_prompt

        branches = cfg_branches(
            prompt, negative, len(request.images), video is not None, base_image, text_scale, image_guidance_scale
        )
        conditions = [self.encode_branch(b, request) for b in branches]
        device = self._execution_device  # found once: each look-up walks every module's hooks
        references = self.encode_references(request, seed, device)
        latents = self.initial_noise(request, seed, device)
        batch_cfg = batch_cfg and self.transformer._parallel_config is None

        self.scheduler.set_shift(shift)
        self.scheduler.set_timesteps(sigmas=flow_sigmas(num_inference_steps), device=latents.device)
        with self.progress_bar(total=num_inference_steps) as progress, self.step_cache(cache):
            for i, sigma in enumerate(self.scheduler.sigmas[:-1]):
                timestep = (sigma * TIMESTEP_SCALE).reshape(1).to(latents.device, torch.float32)
                if cache == "off":
                    velocities = self.velocities(latents, timestep, conditions, references, batch_cfg)
                else:
                    velocities = []
                    for j, condition in enumerate(conditions):
                        with self.branch_context(f"branch{j}"):
                            velocities.append(self.predict_velocity(latents, timestep, condition, references))
                velocity = combine_guidance(velocities, text_scale, image_guidance_scale)
                denoised = latents - sigma.to(latents.device) * velocity  # the clean-latent estimate, for previews
                latents = self.scheduler.step(velocity, self.scheduler.timesteps[i], latents, return_dict=False)[0]
                if callback_on_step_end is not None:
                    callback_on_step_end(self, i, timestep, {"latents": latents, "denoised": denoised})
                progress.update()
                if self._interrupt:
                    raise GenerationCancelled(f"cancelled after step {i + 1} of {num_inference_steps}")
        return VinoPipelineOutput(frames=self.decode(latents), task=request.task, seed=seed)

    def predict_velocity(
        self, latents: torch.Tensor, timestep: torch.Tensor, condition: Conditioning, references: list[torch.Tensor]
    ) -> torch.Tensor:
        """One MMDiT call for one branch: it sees the last `condition.num_references` reference latents."""
        return self.predict_velocities(latents, timestep, [condition], references)[0]

    def predict_velocities(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        conditions: list[Conditioning],
        references: list[torch.Tensor],
    ) -> list[torch.Tensor]:
        """One batched MMDiT call for branches that see the same (last `num_references`) reference latents; their
        texts are padded to the longest and masked. Returns one velocity `[1, C, T, H, W]` per branch."""
        k = conditions[0].num_references
        text, mask, starts, ends = batch_conditions(conditions)
        latents = latents.expand(len(conditions), -1, -1, -1, -1)
        used = references[len(references) - k :] if k else []
        return list(self.transformer(latents, timestep, text, mask, used, starts, ends).float().split(1))

    def velocities(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        conditions: list[Conditioning],
        references: list[torch.Tensor],
        batch_cfg: bool,
    ) -> list[torch.Tensor]:
        """Velocity of every CFG branch: the branches that see the same references in one batched forward
        (`batch_cfg`; a branch that sees fewer references runs on its own: padding its latent stream would move its
        tokens on the RoPE timeline, see docs/benchmarks.md), else one forward per branch. Texts of different
        lengths share a forward only where the attention backend takes the padding's key mask
        (`MASKED_ATTENTION_BACKENDS`); with flash or sage attention they run one by one, unmasked."""
        padding = self.attention_backend in MASKED_ATTENTION_BACKENDS
        groups: dict[tuple, list[int]] = {}
        for i, condition in enumerate(conditions):
            length = None if padding else condition.text_embeds.shape[1]
            groups.setdefault((condition.num_references, length) if batch_cfg else (i,), []).append(i)
        out: list[torch.Tensor | None] = [None] * len(conditions)
        for members in groups.values():
            batch = [conditions[i] for i in members]
            for i, velocity in zip(members, self.predict_velocities(latents, timestep, batch, references)):
                out[i] = velocity
        return out

    # ------------------------------------------------------------------ understanding then generation

    @torch.no_grad()
    def rewrite_prompt(
        self, prompt: str, images: Sequence[ImageInput] = (), video: str | None = None, max_new_tokens: int = 256
    ) -> str:
        """Let the loaded Qwen3-VL expand a short request into a detailed caption (the paper's rewriter)."""
        validate_references(prompt, len(images), 0 if video is None else 1)
        refs = [load_image(image) for image in images]
        text = chat_text(prompt, len(refs), video is not None, system=REWRITE_SYSTEM_PROMPT)
        inputs = vlm_inputs(self.processor, text, refs, None if video is None else read_vlm_video(video))
        new_tokens = self.condition_encoder.generate(inputs, max_new_tokens=max_new_tokens)
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
