"""Peak memory and seconds per denoising step of the engine.

    python -m benchmarks.bench_engine                      # tiny checkpoint set on the CPU (built offline)
    python -m benchmarks.bench_engine --profile 24gb --height 480 --width 848 --frames 85 \\
        --checkpoint ... --vlm ... --base ...            # real weights on a GPU

Prints one table row per request: task, size, profile, seconds per step (median over steps), peak memory
(CUDA max allocated on a GPU, else the process's peak RSS).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vino_app import VinoPipeline
from vino_app.tiny import build_tiny_checkpoints


def peak_memory_gib() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint")
    parser.add_argument("--vlm")
    parser.add_argument("--base")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if args.checkpoint is None:
        root = build_tiny_checkpoints(Path(tempfile.mkdtemp()) / "tiny")
        args.checkpoint, args.vlm, args.base = root / "vino.ckpt", str(root / "qwen"), str(root / "hunyuan")
    pipe = VinoPipeline.from_pretrained(args.checkpoint, vlm=args.vlm, base=args.base, memory_profile=args.profile)
    pipe.set_progress_bar_config(disable=True)
    stamps: list[float] = []
    start = time.perf_counter()
    pipe(
        "a red circle on the left of a blue square",
        num_frames=args.frames,
        height=args.height,
        width=args.width,
        num_inference_steps=args.steps,
        callback_on_step_end=lambda *a: stamps.append(time.perf_counter()),
    )
    total = time.perf_counter() - start
    per_step = statistics.median(b - a for a, b in zip(stamps, stamps[1:]))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print("| task | size | profile | device | s/step (median) | total s | peak memory GiB |")
    print("|---|---|---|---|---|---|---|")
    task = "t2i" if args.frames == 1 else "t2v"
    print(
        f"| {task} | {args.height}x{args.width}x{args.frames} | {pipe.memory_profile.name} | {device} "
        f"| {per_step:.4f} | {total:.2f} | {peak_memory_gib():.2f} |"
    )


if __name__ == "__main__":
    main()
