"""VINO's condition encoder: a frozen Qwen3-VL, learnable query tokens and the two connectors.

Parameter names follow `vino.ckpt` (`mm_encoder.metaquery`, `mm_encoder.connector.*`,
`mm_encoder.connector_vae_branch.*`, optionally `mm_encoder.mm_encoder.*` for the VLM).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn
from transformers import BatchFeature, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLTextRMSNorm

from .media import DECODED_VIDEO, ReferenceVideo, read_reference_video, use_pyav_for_qwen_vl_utils
from .prompt import VIDEO_PAD, VISION_END, VISION_START

VLM_VIDEO_FRAMES = 8
VLM_VIDEO_MIN_PIXELS = 256 * 32 * 32
VLM_VIDEO_MAX_PIXELS = 16384 * 32 * 32
VLM_VIDEO_OPTIONS = {
    "nframes": VLM_VIDEO_FRAMES,
    "min_pixels": VLM_VIDEO_MIN_PIXELS,
    "max_pixels": VLM_VIDEO_MAX_PIXELS,
}
RELEASE_STAMP_FPS = 24  # the frame rate Qwen3-VL's processor assumes when none is given, as in the release


class _ReleaseVideoBudgetNotice(logging.Filter):
    """Drops qwen-vl-utils' warning that `VLM_VIDEO_MAX_PIXELS` exceeds its per-frame limit: it caps the budget to
    that limit, in the release too, and would otherwise warn on every request with a video."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("The given max_pixels[")


_RELEASE_VIDEO_BUDGET_NOTICE = _ReleaseVideoBudgetNotice()


class VinoConnector(nn.Module):
    """RMSNorm (float32, eps 1e-6) then Linear -> GELU(tanh) -> Linear: VLM hidden states -> `out_dim` tokens."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm_qwen = Qwen3VLTextRMSNorm(in_dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(approximate="tanh"), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm_qwen(hidden_states))


@dataclass
class Conditioning:
    """The encoder's output for one CFG branch.

    text_embeds: `[1, L + Q, text_embed_dim]` text-stream tokens for the MMDiT's token refiner.
    text_mask: `[1, L + Q]` their attention mask.
    vae_branch: `[1, L + Q, inner_dim]` latent-stream projections; only rows at boundary positions are used.
    starts / ends: positions of the `<|vision_start|>` / `<|vision_end|>` rows used, after the release's slicing.
    """

    text_embeds: torch.Tensor
    text_mask: torch.Tensor
    vae_branch: torch.Tensor
    starts: list[int]
    ends: list[int]

    @property
    def num_references(self) -> int:
        return len(self.starts)

    def boundary_tokens(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end tokens of each reference: two `[num_references, inner_dim]` tensors."""
        return self.vae_branch[0, self.starts], self.vae_branch[0, self.ends[: len(self.starts)]]


def batch_conditions(conditions: list[Conditioning]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The MMDiT inputs of B branches that see the same references, as one batch: text `[B, L, text_embed_dim]`
    padded with zeros at the end to the longest branch, its mask `[B, L]` (0 on the padding), start and end tokens
    `[B, num_references, inner_dim]` each."""
    if len({c.num_references for c in conditions}) != 1:
        raise ValueError("only branches with the same number of references can share a forward")
    longest = max(c.text_embeds.shape[1] for c in conditions)
    pad = lambda x: torch.nn.functional.pad(  # noqa: E731
        x, (0, longest - x.shape[1]) if x.ndim == 2 else (0, 0, 0, longest - x.shape[1])
    )
    starts, ends = zip(*(c.boundary_tokens() for c in conditions))
    text = torch.cat([pad(c.text_embeds) for c in conditions])
    return text, torch.cat([pad(c.text_mask) for c in conditions]), torch.stack(starts), torch.stack(ends)


def boundary_positions(
    input_ids: torch.Tensor, start_id: int, end_id: int, num_images: int
) -> tuple[list[int], list[int]]:
    """The release's slicing: the first n+1 start positions; the first n end positions plus the last one.

    With a video, its many timestamp groups thus collapse to one start/end pair. `input_ids` is `[L]`.
    """
    starts = (input_ids == start_id).nonzero().flatten().tolist()
    ends = (input_ids == end_id).nonzero().flatten().tolist()
    return starts[: num_images + 1], ends[:num_images] + ends[-1:]


class VinoConditionEncoder(nn.Module):
    """Qwen3-VL (`mm_encoder`) + `metaquery` `[Q, D]` + `connector` (text stream) + `connector_vae_branch`."""

    def __init__(
        self,
        mm_encoder: Qwen3VLForConditionalGeneration,
        num_queries: int,
        text_embed_dim: int,
        inner_dim: int,
    ) -> None:
        super().__init__()
        hidden = mm_encoder.config.text_config.hidden_size
        self.mm_encoder = mm_encoder
        self.metaquery = nn.Parameter(torch.zeros(num_queries, hidden))
        self.connector = VinoConnector(hidden, 4 * text_embed_dim, text_embed_dim)
        self.connector_vae_branch = VinoConnector(hidden, 4 * inner_dim, inner_dim)

    @property
    def num_queries(self) -> int:
        return self.metaquery.shape[0]

    @property
    def device(self) -> torch.device:
        return self.metaquery.device

    @property
    def dtype(self) -> torch.dtype:
        return self.metaquery.dtype

    def forward(self, inputs: BatchFeature, num_images: int) -> Conditioning:
        """Encode processor outputs for one prompt with `num_images` images in it, or for B prompts of one layout
        (the same token length and vision-token positions, no padding: the training loop's groups)."""
        vlm = self.mm_encoder
        device = self.metaquery.device
        inputs = inputs.to(device)
        input_ids = inputs["input_ids"]
        prompt_positions, _ = vlm.model.get_rope_index(
            input_ids,
            inputs["mm_token_type_ids"],
            image_grid_thw=inputs.get("image_grid_thw"),
            video_grid_thw=inputs.get("video_grid_thw"),
            attention_mask=inputs["attention_mask"],
        )
        # Queries continue from the last prompt position: the first query shares it (as the weights were trained).
        query_positions = prompt_positions[:, :, -1:] + torch.arange(self.num_queries, device=device)
        position_ids = torch.cat([prompt_positions, query_positions], dim=-1)

        prompt_embeds = vlm.get_input_embeddings()(input_ids)
        queries = self.metaquery.to(prompt_embeds.dtype).expand(len(input_ids), -1, -1)
        inputs_embeds = torch.cat([prompt_embeds, queries], dim=1)
        attention_mask = torch.cat(
            [inputs["attention_mask"], torch.ones_like(input_ids[:, :1]).expand(-1, self.num_queries)], dim=1
        )

        pixel_values = inputs.get("pixel_values")
        pixel_values_videos = inputs.get("pixel_values_videos")
        out = vlm.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            pixel_values=None if pixel_values is None else pixel_values.to(inputs_embeds.dtype),
            pixel_values_videos=None if pixel_values_videos is None else pixel_values_videos.to(inputs_embeds.dtype),
            image_grid_thw=inputs.get("image_grid_thw"),
            video_grid_thw=inputs.get("video_grid_thw"),
            output_hidden_states=True,
            use_cache=False,
        )
        hidden = out.hidden_states[-2]
        dtype = self.connector.mlp[0].weight.dtype
        starts, ends = boundary_positions(
            input_ids[0], vlm.config.vision_start_token_id, vlm.config.vision_end_token_id, num_images
        )
        return Conditioning(
            text_embeds=self.connector(hidden.to(dtype)),
            text_mask=attention_mask,
            vae_branch=self.connector_vae_branch(hidden.to(dtype)),
            starts=starts,
            ends=ends,
        )

    @apply_forward_hook
    def generate(self, inputs: BatchFeature, max_new_tokens: int = 256) -> torch.Tensor:
        """Plain Qwen3-VL generation (no queries): the new token ids `[1, N]` after the prompt."""
        inputs = inputs.to(self.metaquery.device)
        out = self.mm_encoder.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return out[:, inputs["input_ids"].shape[1] :]


@dataclass
class VlmVideo:
    """The reference video as the VLM sees it: `frames` `[8, 3, H, W]` float (resized by qwen-vl-utils)."""

    frames: torch.Tensor

    def metadata(self) -> dict:
        """What the processor stamps the frames with: as in the release, no frame rate of the file reaches it, so
        Qwen3-VL times the sampled frames 0..7 at its default `RELEASE_STAMP_FPS` (`<0.0 seconds>`, `<0.1 seconds>`,
        ...). Given explicitly, the processor need not fall back (and warn)."""
        count = int(self.frames.shape[0])
        return {"total_num_frames": count, "fps": RELEASE_STAMP_FPS, "frames_indices": list(range(count))}


def read_vlm_video(video_path: str | os.PathLike, decoded: ReferenceVideo | None = None) -> VlmVideo:
    """The video as the VLM reads it in the release: 8 frames sampled uniformly from the original file, the pixel
    budget of `VLM_VIDEO_MIN_PIXELS`..`VLM_VIDEO_MAX_PIXELS`, no frame-rate metadata (stamped as 24 fps). The frames
    are taken from `decoded` when given (no second decoding pass), else decoded here."""
    from qwen_vl_utils import fetch_video

    use_pyav_for_qwen_vl_utils()
    logging.getLogger("qwen_vl_utils.vision_process").addFilter(_RELEASE_VIDEO_BUDGET_NOTICE)
    ele = {"video": str(video_path), **VLM_VIDEO_OPTIONS, DECODED_VIDEO: decoded}
    return VlmVideo(fetch_video(ele))


def read_video_once(video_path: str | os.PathLike, num_frames: int, area: int) -> tuple[np.ndarray, VlmVideo]:
    """A reference video decoded once per request: its first `num_frames` frames for the VAE (uint8
    `[F, H, W, 3]` at the release's size for `area` px, `media.read_reference_video`) and the VLM's video from the
    same pass."""
    decoded = read_reference_video(video_path, num_frames, area, VLM_VIDEO_OPTIONS)
    return decoded.frames, read_vlm_video(video_path, decoded)


def vlm_inputs(
    processor: Qwen3VLProcessor, text: str, images: list[Image.Image], video: VlmVideo | None
) -> BatchFeature:
    """Processor outputs for `text` (a full chat text) with its images and optional video, as the release makes them.

    Images go through qwen-vl-utils' `fetch_image` (patch 14) and then the processor; the video is one
    `read_vlm_video` result, so a request reads its video once for all CFG branches.
    """
    from qwen_vl_utils import fetch_image

    image_inputs = [fetch_image({"image": image}) for image in images] or None
    video_options = {}
    if video is not None:
        # Hand the processor a bare video pad so that its per-frame "<t seconds><|vision_start|>...<|vision_end|>"
        # groups replace the whole placeholder (the expansion the weights were trained with), and keep the
        # uncapped per-frame pixel budget of the release.
        text = text.replace(VISION_START + VIDEO_PAD + VISION_END, VIDEO_PAD)
        video_options = {"videos": [video.frames], "video_metadata": [video.metadata()], "cap_pixels_per_frame": False}
    return processor(text=[text], images=image_inputs, do_sample_frames=False, return_tensors="pt", **video_options)
