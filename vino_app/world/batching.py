"""Batched training of the world model: pools of precomputed requests, grouped so that one VLM forward and one
MMDiT forward serve each group without padding.

A pool item is one `WorldSample` prepared once, as the engine prepares a request (`exact_request_of`): its target's VAE
latents, its references' latents (`VinoPipeline.encode_references`), the latent-cell weights of its target's shapes
and the processor outputs of each CFG branch it can train. Items whose drawn branch has the same layout (token
length, token types, vision grids, latent and reference shapes) form a group: their processor outputs concatenate
into one batch, so the batched condition encoder and MMDiT compute what the per-request path computes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature

from ..encoder import VLM_VIDEO_OPTIONS, read_vlm_video, vlm_inputs
from ..export import save_mp4
from ..guidance import Branch, cfg_branches
from ..media import read_reference_video, to_model_pixels
from ..pipeline import TIMESTEP_SCALE, PreparedRequest, VinoPipeline
from ..prompt import chat_text, default_negative_prompt
from .samples import WorldSample, make_sample

SHAPE_WEIGHT = 10.0  # weight of a pixel (a latent cell) that a shape covers, against 1 for the background
SHAPE_THRESHOLD = 0.1  # a pixel differing from the frame's corner by more than this (in [-1, 1]) is a shape's
REFERENCE_VIDEO = "reference.mp4"
GUIDANCE_SCALES = (2.0, 2.0)  # any scale > 1: every CFG branch the sampler can run is trained


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**62)))


def shape_mask(pixels: torch.Tensor) -> torch.Tensor:
    """Whether each pixel of `[B, 3, F, H, W]` pixels in [-1, 1] belongs to a shape (differs from the frame's
    corner, which is always background): `[B, 1, F, H, W]` bool."""
    return (pixels - pixels[..., :1, :1]).abs().amax(dim=1, keepdim=True) > SHAPE_THRESHOLD


def shape_weight(pixels: torch.Tensor, weight: float = SHAPE_WEIGHT) -> torch.Tensor:
    """`weight` on shape pixels, 1 elsewhere: `[B, 1, F, H, W]`. Shapes cover a few percent of a frame; without this
    the VAE learns backgrounds first."""
    return 1.0 + (weight - 1.0) * shape_mask(pixels).float()


def latent_shape_weight(
    pixels: torch.Tensor, temporal: int, spatial: int, weight: float = SHAPE_WEIGHT
) -> torch.Tensor:
    """Per latent cell, 1 + (weight - 1) * the share of its pixels that shapes cover: `[B, 1, T', H / spatial,
    W / spatial]` for `[B, 3, F, H, W]` pixels, F = 1 + temporal * (T' - 1) (a causal VAE: the first frame alone,
    then groups of `temporal` frames)."""
    cover = shape_mask(pixels).float()
    frames = [cover[:, :, :1]]
    if cover.shape[2] > 1:
        frames.append(cover[:, :, 1:].unflatten(2, (-1, temporal)).mean(dim=3))
    cover = torch.nn.functional.avg_pool3d(torch.cat(frames, dim=2), kernel_size=(1, spatial, spatial))
    return 1.0 + (weight - 1.0) * cover


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per sample, the mean of `weight * (prediction - target)**2` over channels and cells divided by the mean
    weight: `[B]` for `[B, C, T, H, W]` tensors and a `[B, 1, T, H, W]` weight (weight 1: the plain MSE)."""
    error = (weight * (prediction - target) ** 2).flatten(1).mean(dim=1)
    return error / weight.flatten(1).mean(dim=1)


def request_of(pipe: VinoPipeline, sample: WorldSample, workdir: Path) -> PreparedRequest:
    """The sample as the pipeline prepares a request (the reference video goes through an MP4 file, as uploads do)."""
    video = None
    if sample.video is not None:
        video = str(save_mp4(sample.video, workdir / REFERENCE_VIDEO))
    images = [Image.fromarray(i) for i in sample.images]
    height, width = sample.target.shape[1:3]
    return pipe.prepare_request(images, video, sample.pipeline_task, sample.num_frames, height, width, None, None)


def exact_request_of(pipe: VinoPipeline, sample: WorldSample, workdir: Path) -> PreparedRequest:
    """`request_of` with the sample's own video frames in place of the decoded MP4's, for the VAE and the VLM (at
    the frame indices and rate the VLM samples from the file): libx264 does not always encode the same frames to
    the same file, and a pool must be a function of its generator for a resumed run to equal an uninterrupted one."""
    request = request_of(pipe, sample, workdir)
    if sample.video is None:
        return request
    path = workdir / REFERENCE_VIDEO
    decoded = read_reference_video(path, 0, 0, VLM_VIDEO_OPTIONS)
    frames = torch.from_numpy(sample.video[decoded.vlm_metadata["frames_indices"]]).permute(0, 3, 1, 2)
    vlm_video = read_vlm_video(path, replace(decoded, vlm_frames=frames))
    video_frames = sample.video[: len(request.video_frames)]
    if video_frames.shape != request.video_frames.shape:
        raise ValueError(f"world videos are used at their own size, not {request.video_frames.shape}")
    return replace(request, video_frames=video_frames, vlm_video=vlm_video)


def training_branches(sample: WorldSample, request: PreparedRequest) -> list[Branch]:
    """The CFG branches a request trains: its prompt, the negative prompt, and (with images) the image-free one."""
    negative = default_negative_prompt(request.num_frames)
    has_video = sample.video is not None
    return cfg_branches(sample.prompt, negative, len(request.images), has_video, sample.base_image, *GUIDANCE_SCALES)


def pick_branch(num_branches: int, rng: np.random.Generator, dropout: float) -> int:
    """Condition dropout: with probability `dropout` each, the prompt is replaced by the negative prompt (branch 1)
    and the reference images are removed (branch 2, where there is one)."""
    if num_branches == 3 and rng.random() < dropout:
        return 2
    return 1 if rng.random() < dropout else 0


@dataclass
class PoolItem:
    """One precomputed request. latents: the target's `[1, C, T', h, w]` (a posterior sample, scaled); references:
    `[1, C, T_i, h_i, w_i]` each; weight: `[1, 1, T', h, w]` (`latent_shape_weight`); inputs / keys: per CFG
    branch, its processor outputs and its group key."""

    sample: WorldSample
    branches: list[Branch]
    inputs: list[BatchFeature]
    keys: list[tuple]
    latents: torch.Tensor
    references: list[torch.Tensor]
    weight: torch.Tensor


def group_key(inputs: BatchFeature, latents: torch.Tensor, references: list[torch.Tensor]) -> tuple:
    """What must be equal for requests to share one forward with no padding."""
    grids = tuple(tuple(inputs[k].flatten().tolist()) for k in ("image_grid_thw", "video_grid_thw") if k in inputs)
    shapes = (tuple(latents.shape), *(tuple(r.shape) for r in references))
    return tuple(inputs["mm_token_type_ids"][0].tolist()), grids, shapes


def used_references(references: list[torch.Tensor], branch: Branch) -> list[torch.Tensor]:
    """The reference latents a branch sees: the last images it keeps, then the video (as `predict_velocities`)."""
    count = len(branch.image_indices) + int(branch.has_video)
    return references[len(references) - count :] if count else []


@torch.no_grad()
def prepare_item(
    pipe: VinoPipeline, sample: WorldSample, rng: np.random.Generator, workdir: Path, weight: float
) -> PoolItem:
    """Prepare `sample` once: the engine's request, latents drawn from `rng`, processor outputs of every branch."""
    request = exact_request_of(pipe, sample, workdir)
    references = pipe.encode_references(request, int(rng.integers(2**31)))
    pixels = to_model_pixels(sample.target).to(pipe.vae.device)
    vae = pipe.vae
    latents = vae.encode(pixels).latent_dist.sample(generator=torch_generator(rng)) * vae.config.scaling_factor
    compression = vae.config.temporal_compression_ratio, vae.config.spatial_compression_ratio
    cell_weight = latent_shape_weight(pixels, *compression, weight)
    branches = training_branches(sample, request)
    inputs, keys = [], []
    for branch in branches:
        text = chat_text(branch.text, len(branch.image_indices), branch.has_video)
        images = [request.images[i] for i in branch.image_indices]
        inputs.append(vlm_inputs(pipe.processor, text, images, request.vlm_video if branch.has_video else None))
        keys.append(group_key(inputs[-1], latents, used_references(references, branch)))
    return PoolItem(sample, branches, inputs, keys, latents, references, cell_weight)


def build_pool(
    pipe: VinoPipeline, rng: np.random.Generator, tasks: list[str], long: bool | None, workdir: Path, weight: float
) -> list[PoolItem]:
    """One item per task name, samples and latents drawn from `rng` in order (a pool is a function of its rng)."""
    return [prepare_item(pipe, make_sample(rng, task, long), rng, workdir, weight) for task in tasks]


def draw_groups(
    pool: list[PoolItem], rng: np.random.Generator, batch: int, dropout: float
) -> list[list[tuple[int, int]]]:
    """A step's `batch` (item, branch) pairs in groups of one layout: the pool in a random order, each item with a
    dropout branch; groups are filled in the order they first appear in it, until `batch` pairs are taken (so a
    layout's chance to be trained follows its share of the pool)."""
    order = rng.permutation(len(pool))
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for i in order:
        branch = pick_branch(len(pool[i].branches), rng, dropout)
        groups.setdefault(pool[i].keys[branch], []).append((int(i), branch))
    taken: list[list[tuple[int, int]]] = []
    left = batch
    for members in groups.values():
        taken.append(members[:left])
        left -= len(taken[-1])
        if not left:
            break
    return taken


def concat_inputs(inputs: list[BatchFeature]) -> BatchFeature:
    """Processor outputs of prompts of one layout as one batch (what the processor returns for all texts at once)."""
    return BatchFeature({key: torch.cat([i[key] for i in inputs]) for key in inputs[0].keys()})


def group_velocity(
    pipe: VinoPipeline, pool: list[PoolItem], members: list[tuple[int, int]], noisy: torch.Tensor, sigmas: torch.Tensor
) -> torch.Tensor:
    """Velocities `[B, C, T, H, W]` of a group's B (item, branch) pairs at noisy latents `[B, C, T, H, W]` and noise
    levels `[B]`: one condition-encoder forward and one MMDiT forward."""
    items = [pool[i] for i, _ in members]
    branch = items[0].branches[members[0][1]]
    inputs = concat_inputs([item.inputs[b] for item, (_, b) in zip(items, members)])
    condition = pipe.condition_encoder(inputs, len(branch.image_indices))
    k = condition.num_references
    starts, ends = condition.vae_branch[:, condition.starts], condition.vae_branch[:, condition.ends[:k]]
    per_item = [used_references(item.references, item.branches[b]) for item, (_, b) in zip(items, members)]
    references = [torch.cat(latents) for latents in zip(*per_item)]
    timestep = sigmas * TIMESTEP_SCALE
    text, mask = condition.text_embeds, condition.text_mask
    return pipe.transformer(noisy, timestep, text, mask, references, starts, ends).float()


def group_losses(
    pipe: VinoPipeline, pool: list[PoolItem], members: list[tuple[int, int]], sigmas: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Flow-matching losses `[B]` of a group (x_t = (1 - s) x_0 + s e, target e - x_0), shape-weighted per cell."""
    x0 = torch.cat([pool[i].latents for i, _ in members])
    weight = torch.cat([pool[i].weight for i, _ in members])
    s = sigmas.view(-1, 1, 1, 1, 1)
    velocity = group_velocity(pipe, pool, members, (1 - s) * x0 + s * noise, sigmas)
    return weighted_mse(velocity, noise - x0, weight)
