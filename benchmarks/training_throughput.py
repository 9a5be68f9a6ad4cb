"""Training throughput of the world model: ms per sample of the per-request step vs the batched step.

    OMP_NUM_THREADS=1 python -m benchmarks.training_throughput --threads 1

The shipped model's sizes, VLM and VAE (`models/vino-world`, `WorldModelConfig` defaults) with a fresh MMDiT and
encoder head, stage 3's settings (MMDiT trained, 10% dropout per modality). Per task mixture (`--mixes`: single-shape
t2i, stage 3's mixture), a forward and backward of `--batch` requests per step, the two steps interleaved `--repeats`
times, each timed alone; the figure is the median. The per-request step is `train.sample_loss` per request (the
request prepared, the target VAE-encoded, the processor run and the reference video written to and read from an
MP4 for every sample). The batched step is `train.train_vino`'s (`world.batching`): groups of one layout from a
pool; the pool's preparation (once per pool) is timed apart and shared over the samples a pool serves at the
defaults (`--pool-steps` steps of `--batch`), and the amortised figure adds it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vino_app.train import POOL_BATCHES, POOL_STEPS, STAGE3_MIX, sample_loss, training_sigma
from vino_app.world import demo_model_dir
from vino_app.world.batching import SHAPE_WEIGHT, build_pool, draw_groups, group_losses, torch_generator
from vino_app.world.model import fresh_pipeline
from vino_app.world.samples import make_sample

MIXES = {"t2i_single": {"t2i_single": 1.0}, "stage3": STAGE3_MIX}
DROPOUT = 0.1
SIGMA_SHIFT = 3.0


def draw_tasks(rng: np.random.Generator, mix: dict[str, float], count: int) -> list[str]:
    weights = np.array(list(mix.values())) / sum(mix.values())
    return [str(t) for t in rng.choice(list(mix), size=count, p=weights)]


def per_request_step(pipe, rng: np.random.Generator, mix: dict[str, float], batch: int, workdir: Path) -> None:
    for task in draw_tasks(rng, mix, batch):
        sample = make_sample(rng, task)
        (sample_loss(pipe, sample, rng, DROPOUT, workdir, SIGMA_SHIFT) / batch).backward()


def batched_step(pipe, pool, rng: np.random.Generator, batch: int) -> int:
    """One step; returns the number of forwards (groups)."""
    groups = draw_groups(pool, rng, batch, DROPOUT)
    generator = torch_generator(rng)
    for members in groups:
        sigmas = torch.cat([training_sigma(generator, SIGMA_SHIFT) for _ in members])
        noise = torch.cat([torch.randn(pool[i].latents.shape, generator=generator) for i, _ in members])
        (group_losses(pipe, pool, members, sigmas, noise).sum() / batch).backward()
    return len(groups)


def timed(run) -> tuple[float, object]:
    start = time.perf_counter()
    out = run()
    return time.perf_counter() - start, out


def main(argv=None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timings of each step")
    parser.add_argument("--mixes", nargs="+", choices=list(MIXES), default=list(MIXES))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe, _ = fresh_pipeline(demo_model_dir())
    pool_size = POOL_BATCHES * args.batch  # train.py's defaults
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.mixes:
            mix = MIXES[name]
            rng = np.random.default_rng(0)
            tasks = draw_tasks(rng, mix, pool_size)
            prepare_s, pool = timed(lambda: build_pool(pipe, rng, tasks, None, Path(workdir), SHAPE_WEIGHT))
            single, batched, forwards = [], [], []
            for repeat in range(args.repeats):
                step_rng = np.random.default_rng([1, repeat])
                seconds, _ = timed(lambda: per_request_step(pipe, step_rng, mix, args.batch, Path(workdir)))
                single.append(seconds)
                seconds, count = timed(lambda: batched_step(pipe, pool, np.random.default_rng([2, repeat]), args.batch))
                batched.append(seconds)
                forwards.append(count)
                pipe.transformer.zero_grad(set_to_none=True)
                pipe.condition_encoder.zero_grad(set_to_none=True)
            ms = lambda values: 1000 * statistics.median(values) / args.batch  # noqa: E731
            prepare_ms = 1000 * prepare_s / pool_size
            amortised = ms(batched) + prepare_ms * pool_size / (POOL_STEPS * args.batch)
            results[name] = {
                "per_request_ms": ms(single),
                "batched_ms": ms(batched),
                "pool_prepare_ms_per_item": prepare_ms,
                "batched_amortised_ms": amortised,
                "speedup": ms(single) / ms(batched),
                "speedup_amortised": ms(single) / amortised,
                "forwards_per_step": statistics.median(forwards),
            }
            print(
                f"{name}: per-request {ms(single):.1f} ms/sample, batched {ms(batched):.1f} ms/sample "
                f"({statistics.median(forwards):.0f} forwards per step of {args.batch}; "
                f"x{ms(single) / ms(batched):.1f}), "
                f"pool preparation {prepare_ms:.1f} ms/item -> amortised {amortised:.1f} ms/sample "
                f"(x{ms(single) / amortised:.1f}); n = {args.repeats} steps of each, median, {args.threads} thread(s)",
                flush=True,
            )
    return results


if __name__ == "__main__":
    main()
