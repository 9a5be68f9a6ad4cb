"""Train the world model: `python -m vino_app.train --out models/vino-world --seed 0` (see --help for the budget).

1. The VAE (HunyuanVideo architecture) on world images and videos.
2. VINO's progressive recipe on the engine's own modules (`VinoPipeline.encode_branch`, `encode_references`,
   `predict_velocity`, i.e. the condition encoder and `VinoTransformer3DModel.forward` with reference latents):
   stage 1 trains the queries and connectors on long captions with image reconstruction as a proxy task; stage 2
   adds the MMDiT, with long and short captions (`--single-shapes` opens it with one-shape scenes, a curriculum
   that is off by default); stage 3 mixes every task with an image-selection proxy task. Batched
   (`world.batching`): pools of requests prepared once, trained in groups of one layout (one VLM and one MMDiT
   forward per group), with a loss that weights the latent cells shapes cover.
   Flow matching (x_t = (1 - s) x_0 + s e, timestep s * 999, target velocity e - x_0), condition dropout per
   modality as the pipeline's CFG branches drop them, AdamW, EMA, gradient clipping, resumable checkpoints.

The same command runs on CPU, on a GPU, under `accelerate launch` on several GPUs, and under
`torchrun --nproc_per_node N` on N CPU processes (gloo). Each process draws its own samples; gradients are averaged
in one all-reduce. Everything is drawn from `--seed`, the step number and the process index, so a resumed run
continues exactly as an uninterrupted one. `--init-from` starts a new run (optimizer, schedule, EMA) from a trained
model folder's weights: a warm restart when the resumable state of a run is gone.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel, compute_density_for_timestep_sampling

from .checkpoint import ENCODER_PREFIX, TRANSFORMER_PREFIX, read_checkpoint, save_checkpoint, sub_state_dict
from .errors import CheckpointError
from .media import to_model_pixels
from .pipeline import TIMESTEP_SCALE, VinoPipeline
from .world.model import (
    WorldModelConfig,
    assemble_pipeline,
    build_world_qwen,
    new_vae,
    write_transformer_config,
)
from .world.batching import (
    SHAPE_WEIGHT,
    build_pool,
    draw_groups,
    group_losses,
    pick_branch,
    request_of,
    shape_weight,
    torch_generator,
    training_branches,
)
from .world.samples import WorldSample
from .world.scene import animate, random_scene, random_video, render, render_video

STATE_FILE = "training/state.pt"
VAE_STATE_FILE = "training/vae_state.pt"
CONFIG_FILE = "world.json"


@dataclass(frozen=True)
class Stage:
    """One stage of the recipe: its share of the steps, whether the MMDiT trains, the task mixture (weights) and
    whether captions are long only."""

    name: str
    fraction: float
    train_transformer: bool
    mix: dict[str, float]
    long_only: bool


# Stage 3's task weights: t2i and the two edits get 0.65 of the samples (0.48 before), the six video and
# proxy tasks the rest; every task still trains.
STAGE3_MIX = {
    "t2i": 0.3, "ti2i": 0.2, "ti2i_base": 0.15,
    "t2v": 0.06, "i2v": 0.06, "ti2v": 0.05, "tv2v": 0.05, "tiv2v": 0.05, "select": 0.08,
}  # fmt: skip


def recipe(fractions: tuple[float, float, float], single_shapes: float = 0.0) -> list[Stage]:
    """The paper's three stages with the world's tasks. `single_shapes` > 0 opens stage 2 with that share of its
    steps on one-shape scenes with long captions (every word names the one shape's colour, kind, size or place)."""
    joint = {"t2i": 0.55, "t2v": 0.3, "reconstruct": 0.15}
    single = {"t2i_single" if task == "t2i" else task: weight for task, weight in joint.items()}
    return [
        Stage(
            "1 align (queries + connectors)", fractions[0], False, {"t2i": 0.5, "t2v": 0.2, "reconstruct": 0.3}, True
        ),
        Stage("2 joint, single shapes", fractions[1] * single_shapes, True, single, True),
        Stage("2 joint (+ MMDiT)", fractions[1] * (1 - single_shapes), True, joint, False),
        Stage(
            "3 all tasks",
            fractions[2],
            True,
            STAGE3_MIX,
            False,
        ),
    ]


def stage_at(stages: list[Stage], step: int, total: int) -> Stage:
    edge = 0.0
    for stage in stages:
        edge += stage.fraction * total
        if step < edge:
            return stage
    return stages[-1]


def step_rng(seed: int, step: int, rank: int) -> np.random.Generator:
    """The generator of everything random in one step of one process."""
    return np.random.default_rng([seed, step, rank])


# ---------------------------------------------------------------------------------------------- VAE


def vae_batch(rng: np.random.Generator, images: int, videos: int) -> list[torch.Tensor]:
    """Pixels in [-1, 1]: `[images, 3, 1, 64, 64]` stills and `[videos, 3, 9, 64, 64]` clips."""
    stills = [render(random_scene(rng, int(rng.integers(0, 4)))) for _ in range(images)]
    clips = [render_video(animate(*random_video(rng))) for _ in range(videos)]
    batch = [torch.cat([to_model_pixels(s) for s in stills])]
    if clips:
        batch.append(torch.cat([to_model_pixels(c) for c in clips]))
    return batch


def train_vae(root: Path, config: WorldModelConfig, args, accelerator: Accelerator) -> bool:
    """Reconstruction (L1 + MSE, shape pixels weighted) with a small KL term, a clip every third step; cosine
    learning rate. The log-variance starts at -10 (a nearly deterministic encoder), which trains far faster than the
    usual 0. The scaling factor is set to 1 / std of the latents. Resumable: a state every `save_every` steps in
    `root/training/vae_state.pt`; `--vae-until` stops early. Returns whether the VAE is complete."""
    out = root / "hunyuan" / "vae"
    if (out / "config.json").is_file():
        return True
    torch.manual_seed(args.seed)
    vae = new_vae(config).to(accelerator.device).train()
    torch.nn.init.constant_(vae.quant_conv.bias[config.latent_channels :], -10.0)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=10, num_training_steps=args.vae_steps)
    state_path, step = root / VAE_STATE_FILE, 0
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        accelerator.print(f"resuming the VAE from step {step}")
    until = min(args.vae_steps, args.vae_until or args.vae_steps)
    start = time.time()
    while step < until:
        rng = step_rng(args.seed, step, accelerator.process_index)
        generator = torch_generator(rng)
        loss_sum = 0.0
        for pixels in vae_batch(rng, args.vae_batch, int(step % 3 == 0)):
            pixels = pixels.to(accelerator.device)
            posterior = vae.encode(pixels).latent_dist
            latents = (
                posterior.mean
                + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(pixels.device)
            )
            recon = vae.decode(latents).sample
            error = (recon - pixels).abs()
            loss = (shape_weight(pixels) * (error + error**2)).mean() + 1e-6 * posterior.kl().mean()
            loss.backward()
            loss_sum += loss.item()
        average_gradients(vae.parameters(), accelerator)
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if step % args.log_every == 0 or step == args.vae_steps:
            accelerator.print(f"vae step {step}/{args.vae_steps} loss {loss_sum:.4f} {time.time() - start:.0f}s")
        if (step % args.save_every == 0 or step == until) and accelerator.is_main_process:
            state = {
                "vae": vae.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
            }
            save_state(state, state_path)
    if step < args.vae_steps:
        accelerator.wait_for_everyone()
        return False
    vae.eval()
    with torch.no_grad():
        pixels = vae_batch(np.random.default_rng([args.seed]), 64, 0)[0].to(accelerator.device)
        std = vae.encode(pixels).latent_dist.mode().std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    if accelerator.is_main_process:
        vae.save_pretrained(out)
    accelerator.wait_for_everyone()
    return True


def save_state(state: dict, path: Path) -> None:
    """`torch.save` through a temporary file, so that a run stopped mid-write keeps its previous state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


# ---------------------------------------------------------------------------------------------- VINO


def average_gradients(parameters, accelerator: Accelerator) -> None:
    """Mean of the gradients over processes, in one all-reduce (a no-op on one process). A trainable parameter
    that got no gradient here (a part this process's requests did not use) takes part with zeros, so every
    process reduces the same tensor."""
    if accelerator.num_processes == 1:
        return
    trainable = [p for p in parameters if p.requires_grad]
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in trainable])
    flat = accelerator.reduce(flat, reduction="mean")
    for p, grad in zip(trainable, flat.split([p.numel() for p in trainable])):
        p.grad = grad.view_as(p)


def training_sigma(generator: torch.Generator, shift: float) -> torch.Tensor:
    """A noise level `[1]` in (0, 1): logit-normal (diffusers' SD3 sampling), then shifted towards noise as the
    sampler's `shift` does (s -> shift * s / (1 + (shift - 1) * s)). The prompt decides the image only at high noise;
    with shift 3, 39% of the levels are above 0.8 (8% unshifted), and the MMDiT learns to use the text sooner
    (`benchmarks/conditioning_onset.py`)."""
    sigma = compute_density_for_timestep_sampling("logit_normal", 1, logit_mean=0.0, logit_std=1.0, generator=generator)
    return shift * sigma / (1 + (shift - 1) * sigma)


def sample_loss(
    pipe: VinoPipeline, sample: WorldSample, rng: np.random.Generator, dropout: float, workdir: Path, sigma_shift: float
) -> torch.Tensor:
    """Flow-matching loss (plain MSE) of one request at a `training_sigma` noise level, a `pick_branch` dropout
    branch, everything prepared afresh: the per-request step that `benchmarks/training_throughput.py` compares the
    batched loop (`world.batching`) with."""
    request = request_of(pipe, sample, workdir)
    branches = training_branches(sample, request)
    branch = branches[pick_branch(len(branches), rng, dropout)]
    generator = torch_generator(rng)
    device = pipe.transformer.device
    with torch.no_grad():
        references = pipe.encode_references(request, int(rng.integers(2**31)))
        target = to_model_pixels(sample.target).to(device)
        x0 = pipe.vae.encode(target).latent_dist.sample(generator=generator) * pipe.vae.config.scaling_factor
    sigma = training_sigma(generator, sigma_shift).to(device)
    noise = torch.randn(x0.shape, generator=generator).to(device)
    noisy = (1 - sigma) * x0 + sigma * noise
    velocity = pipe.predict_velocity(noisy, sigma * TIMESTEP_SCALE, pipe.encode_branch(branch, request), references)
    return torch.nn.functional.mse_loss(velocity, noise - x0)


def trainable_parameters(pipe: VinoPipeline) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """(queries + connectors, MMDiT) parameters; the VLM and the VAE stay frozen."""
    heads = [p for n, p in pipe.condition_encoder.named_parameters() if not n.startswith("mm_encoder.")]
    return heads, list(pipe.transformer.parameters())


def training_state(pipe, optimizer, scheduler, ema, step: int) -> dict:
    heads = {
        n: p.detach().clone() for n, p in pipe.condition_encoder.named_parameters() if not n.startswith("mm_encoder.")
    }
    return {
        "step": step,
        "transformer": pipe.transformer.state_dict(),
        "heads": heads,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "ema": ema.state_dict(),
    }


def load_training_state(path: Path, pipe, optimizer, scheduler, ema) -> int:
    state = torch.load(path, map_location="cpu", weights_only=False)
    pipe.transformer.load_state_dict(state["transformer"])
    pipe.condition_encoder.load_state_dict(state["heads"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    ema.load_state_dict(state["ema"])
    return state["step"]


def load_weights(path: Path, pipe: VinoPipeline) -> None:
    """Start from a trained model's `vino.ckpt` (MMDiT, queries and connectors) in place of fresh weights."""
    state = read_checkpoint(path)
    pipe.transformer.load_state_dict(sub_state_dict(state, TRANSFORMER_PREFIX))
    result = pipe.condition_encoder.load_state_dict(sub_state_dict(state, ENCODER_PREFIX), strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("mm_encoder.")]  # the frozen VLM is not in it
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"'{path}' does not fit the encoder of this model's sizes "
            f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})"
        )


POOL_BATCHES = 8  # default pool size, in batches
POOL_STEPS = 64  # default steps per pool: a request is drawn POOL_STEPS / POOL_BATCHES = 8 times on average
POOL_STREAM = 1  # a pool's generator is [seed, stage, first step, process, POOL_STREAM], apart from the steps'


def stage_pool(pipe: VinoPipeline, stage: Stage, key: tuple[int, int, int], args, workdir: Path):
    """`--pool-size` requests of the stage's task mixture, prepared once (`world.batching.build_pool`); `key` is
    (stage index, the pool's first step, process index)."""
    rng = np.random.default_rng([args.seed, *key, POOL_STREAM])
    weights = np.array(list(stage.mix.values())) / sum(stage.mix.values())
    tasks = [str(t) for t in rng.choice(list(stage.mix), size=args.pool_size, p=weights)]
    return build_pool(pipe, rng, tasks, True if stage.long_only else None, workdir, args.shape_weight)


def train_vino(root: Path, config: WorldModelConfig, args, accelerator: Accelerator) -> VinoPipeline:
    """Stages 1-3; writes a resumable state every `save_every` steps and `root/vino.ckpt` (the EMA weights)
    whenever it stops: after the last step or at `--until`. Each step trains `--batch` requests of a pool that is
    drawn afresh every `--pool-steps` steps and at each stage's start (a function of the seed, the stage and that
    step, so a resumed run rebuilds the pool it stopped in), in groups of one layout (`world.batching`)."""
    from diffusers import AutoencoderKLHunyuanVideo

    vae = AutoencoderKLHunyuanVideo.from_pretrained(root / "hunyuan" / "vae")
    pipe = assemble_pipeline(root, config, args.seed, vae).to(accelerator.device)
    write_transformer_config(root, pipe.transformer)
    if args.init_from:
        load_weights(args.init_from / "vino.ckpt", pipe)
    heads, transformer_params = trainable_parameters(pipe)
    parameters = heads + transformer_params
    optimizer = torch.optim.AdamW(parameters, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=args.warmup, num_training_steps=args.steps)
    ema = EMAModel(parameters, decay=args.ema_decay)
    stages = recipe(tuple(args.stage_fractions), args.single_shapes)
    state_path = root / STATE_FILE
    step = load_training_state(state_path, pipe, optimizer, scheduler, ema) if state_path.is_file() else 0
    if step:
        accelerator.print(f"resuming from step {step}")
    workdir = Path(tempfile.mkdtemp(prefix="vino-train-"))
    start, losses = time.time(), []
    until = min(args.steps, args.until or args.steps)
    pool, pool_key = [], None
    while step < until:
        stage = stage_at(stages, step, args.steps)
        pipe.transformer.requires_grad_(stage.train_transformer)
        key = (stages.index(stage), step - step % args.pool_steps, accelerator.process_index)
        if key != pool_key:
            pool, pool_key = stage_pool(pipe, stage, key, args, workdir), key
        rng = step_rng(args.seed, step, accelerator.process_index)
        groups = draw_groups(pool, rng, args.batch, args.cond_dropout)
        generator = torch_generator(rng)
        for members in groups:
            sigmas = torch.cat([training_sigma(generator, args.sigma_shift) for _ in members]).to(accelerator.device)
            noise = torch.cat([torch.randn(pool[i].latents.shape, generator=generator) for i, _ in members])
            noise = noise.to(accelerator.device)
            group = group_losses(pipe, pool, members, sigmas, noise)
            (group.sum() / args.batch).backward()
            losses += group.tolist()
        average_gradients(parameters, accelerator)
        torch.nn.utils.clip_grad_norm_(parameters, args.clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        ema.step(parameters)
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            accelerator.print(
                f"step {step}/{args.steps} [{stage.name}] loss {np.mean(losses):.4f} "
                f"lr {scheduler.get_last_lr()[0]:.2e} "
                f"{time.time() - start:.0f}s"
            )
            losses = []
        if (step % args.save_every == 0 or step == until) and accelerator.is_main_process:
            save_state(training_state(pipe, optimizer, scheduler, ema, step), state_path)
    shutil.rmtree(workdir, ignore_errors=True)
    if accelerator.is_main_process:
        ema.store(parameters)
        ema.copy_to(parameters)
        save_checkpoint(root / "vino.ckpt", pipe.transformer, pipe.condition_encoder)
        ema.restore(parameters)
        accelerator.print(f"wrote {root / 'vino.ckpt'} (EMA weights at step {step} of {args.steps})")
    accelerator.wait_for_everyone()
    return pipe


# ---------------------------------------------------------------------------------------------- CLI


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vino_app.train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("models/vino-world"), help="model folder (release layout)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=4000, help="optimizer steps of stages 1-3 together")
    parser.add_argument(
        "--until", type=int, help="stop after this step (resumable state + EMA weights in vino.ckpt); rerun to go on"
    )
    parser.add_argument("--batch", type=int, default=4, help="requests per step and process")
    parser.add_argument("--pool-size", type=int, help=f"requests prepared per pool (default: {POOL_BATCHES} x --batch)")
    parser.add_argument("--pool-steps", type=int, default=POOL_STEPS, help="steps trained on one pool before the next")
    parser.add_argument(
        "--shape-weight", type=float, default=SHAPE_WEIGHT, help="loss weight of the latent cells shapes cover (1: MSE)"
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--stage-fractions", type=float, nargs=3, default=(0.05, 0.35, 0.6))
    parser.add_argument(
        "--single-shapes", type=float, default=0.0, help="share of stage 2 spent first on one-shape scenes (curriculum)"
    )
    parser.add_argument(
        "--sigma-shift", type=float, default=3.0, help="shift of the training noise levels towards noise"
    )
    parser.add_argument("--cond-dropout", type=float, default=0.1, help="per modality (text, reference images)")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping")
    parser.add_argument("--vae-steps", type=int, default=1500)
    parser.add_argument("--vae-batch", type=int, default=8)
    parser.add_argument("--vae-lr", type=float, default=1e-3)
    parser.add_argument("--vae-until", type=int, help="stop the VAE after this step (resumable); rerun to go on")
    parser.add_argument("--vae-only", action="store_true", help="train the VAE only (for `evaluate --ceiling --vae`)")
    parser.add_argument(
        "--latent-channels", type=int, default=WorldModelConfig.latent_channels, help="new folders only"
    )
    parser.add_argument(
        "--vae-channels",
        type=int,
        nargs="+",
        default=WorldModelConfig.vae_channels,
        help="VAE widths (new folders only)",
    )
    parser.add_argument(
        "--vae-spatial", type=int, choices=(2, 4), default=WorldModelConfig.vae_spatial_compression,
        help="VAE spatial compression (new folders only); 2 makes the MMDiT patch 4x4, so its tokens stay 8x8 a frame",
    )
    parser.add_argument(
        "--reuse-vae-from", type=Path, help="copy qwen/ and hunyuan/vae/ from this model folder (ablations)"
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        help="a warm restart: start from this model folder's weights (with its qwen/, VAE and world.json) with a new "
        "optimizer and learning-rate schedule over --steps",
    )
    parser.add_argument("--no-queries", action="store_true", help="ablation: no learnable query tokens")
    parser.add_argument(
        "--no-boundary-tokens", action="store_true", help="ablation: no start/end tokens in the latent stream"
    )
    parser.add_argument("--save-every", type=int, default=25)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args(argv)
    if not 0.0 <= args.single_shapes <= 1.0:
        parser.error(f"--single-shapes {args.single_shapes}: a share of stage 2's steps, from 0 (off) to 1")
    args.pool_size = args.pool_size or POOL_BATCHES * args.batch
    if args.pool_size < args.batch:
        parser.error(f"--pool-size {args.pool_size}: at least --batch ({args.batch}) requests")
    if args.pool_steps < 1:
        parser.error(f"--pool-steps {args.pool_steps}: at least 1")
    if args.shape_weight < 1:
        parser.error(f"--shape-weight {args.shape_weight}: at least 1 (1 is the plain MSE)")
    if args.init_from and not (args.init_from / "vino.ckpt").is_file():
        parser.error(
            f"--init-from {args.init_from}: no vino.ckpt there; pass a trained model folder such as models/vino-world"
        )
    return args


def main(argv=None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    # cpu=True on machines without CUDA lets `torchrun --nproc_per_node N` train on N CPU processes (gloo).
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    root = args.out
    config_path = root / CONFIG_FILE
    source = args.init_from or args.reuse_vae_from
    # The main process settles the folder (sizes, VLM, VAE); the others read it after the barrier, never mid-write.
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if not config_path.is_file():
            if args.init_from:
                shutil.copyfile(args.init_from / CONFIG_FILE, config_path)
            else:
                queries = 0 if args.no_queries else WorldModelConfig.num_queries
                WorldModelConfig(
                    num_queries=queries,
                    boundary_tokens=not args.no_boundary_tokens,
                    latent_channels=args.latent_channels,
                    vae_channels=tuple(args.vae_channels),
                    vae_spatial_compression=args.vae_spatial,
                ).save(config_path)
        if source and not (root / "qwen").is_dir():
            shutil.copytree(source / "qwen", root / "qwen")
            shutil.copytree(source / "hunyuan" / "vae", root / "hunyuan" / "vae")
        if not (root / "qwen").is_dir():
            build_world_qwen(root / "qwen", WorldModelConfig.load(config_path), args.seed)
    accelerator.wait_for_everyone()
    config = WorldModelConfig.load(config_path)
    if train_vae(root, config, args, accelerator) and not args.vae_only:
        train_vino(root, config, args, accelerator)
    return root


if __name__ == "__main__":
    main()
