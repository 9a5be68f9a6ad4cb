"""Seconds per generation of the shipped world model at its default settings, on the CPU.

    python -m benchmarks.bench_demo_model --threads 2 [--tasks t2i t2v ti2i] [--repeats 5]

Loads `models/vino-world` through `VinoPipeline.from_pretrained` (load time reported), then runs each task's
example from `defaults.json` `--repeats` times and prints the median wall-clock seconds per request.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vino_app.world import REPO_ROOT, demo_defaults, load_world_pipeline


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", default=["t2i", "ti2i", "t2v"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    pipe = load_world_pipeline()
    print(f"load: {time.perf_counter() - start:.2f} s ({args.threads} threads)")
    defaults = demo_defaults()
    print("| task | size | steps | text CFG | image CFG | s/request (median) |\n|---|---|---|---|---|---|")
    for task in args.tasks:
        d = defaults[task]
        images = [str(REPO_ROOT / p) for p in d["images"]]
        video = str(REPO_ROOT / d["video"]) if d["video"] else None
        times = []
        for seed in range(args.repeats + 1):  # the first run warms up
            start = time.perf_counter()
            pipe(
                d["instruction"], images, video, task=d["task"], base_image=d["base_image"], num_frames=d["num_frames"],
                height=d["height"], width=d["width"], num_inference_steps=d["num_inference_steps"],
                guidance_scale=d["guidance_scale"], image_guidance_scale=d["image_guidance_scale"], shift=d["shift"],
                seed=seed,
            )  # fmt: skip
            times.append(time.perf_counter() - start)
        size = f"{d['width']}x{d['height']}x{d['num_frames']}"
        print(
            f"| {task} | {size} | {d['num_inference_steps']} | {d['guidance_scale']} | {d['image_guidance_scale']} "
            f"| {statistics.median(times[1:]):.2f} |"
        )


if __name__ == "__main__":
    main()
