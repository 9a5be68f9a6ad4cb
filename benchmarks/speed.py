"""Seconds per request of each speed option against the sequential path, on fixed requests, in one process.

    python -m benchmarks.speed [--repeats 3] [--threads 1] [--sets golden world]

Requests: t2i, ti2i with image CFG, t2v and tv2v of the tiny golden fixture (`tests/data/vino-golden`, the
recorded settings) and of the demo model (`models/vino-world`, its defaults; ti2i with image CFG 3). Every option
(`OPTIONS`: a name -> pipeline call arguments and an optional setup) runs every request with the same seed, options
interleaved within each repeat after one untimed warm-up round. Prints per option and request: MMDiT forwards per
request, median seconds per request, and the decoded frames' max abs difference and PSNR against `sequential`.

`release` emulates the release's method with our engine: branches one by one, the reference latents encoded again
for every branch and the reference video decoded twice (once for the VAE, once for the VLM). Last lines:
`ours_vs_release=R` (median over the golden requests of batched / release seconds) and
`speedup_batched=X speedup_fast=Y psnr_fast_db=Z` (X, Y: median over all requests of sequential / option
seconds; Z: PSNR of `fast` against `sequential`, worst request; nan for an option not in `OPTIONS`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator

import numpy as np
import torch

import vino_app.pipeline as pipeline_module
from vino_app import VinoPipeline, read_task_file
from vino_app.tasks import release_cfg
from vino_app.encoder import VLM_VIDEO_OPTIONS, read_vlm_video
from vino_app.media import read_reference_video
from vino_app.pipeline import cfg_branches
from vino_app.world import REPO_ROOT, demo_defaults, load_world_pipeline

GOLDEN = REPO_ROOT / "tests" / "data" / "vino-golden"
GOLDEN_CASES = ("t2i", "ti2i_base", "t2v", "tv2v")
WORLD_TASKS = {"t2i": {}, "ti2i": {"image_guidance_scale": 3.0}, "t2v": {}, "tv2v": {}}
PEAK = 255.0


@dataclass
class Request:
    """One fixed request: which set, a label, the pipeline's call arguments, the folder its media paths start from."""

    set: str
    name: str
    call: dict
    cwd: Path


@dataclass
class Option:
    """A speed option: extra call arguments and a context it runs in (set up per request, undone after)."""

    call: dict = field(default_factory=dict)
    context: Callable[[VinoPipeline, Request], ContextManager] = lambda pipe, request: contextlib.nullcontext()


@contextlib.contextmanager
def release_method(pipe: VinoPipeline, request: Request) -> Iterator[None]:
    """The release's per-request work on our engine: references encoded once per CFG branch, the reference video
    decoded twice (the VAE's reader and the VLM's)."""
    call = request.call
    scale = call.get("guidance_scale") or release_cfg(call.get("num_frames", 1))
    images = call.get("images", [])
    branches = len(cfg_branches("", "", len(images), call.get("video") is not None, call.get("base_image", False),
                                scale, call.get("image_guidance_scale", 1.0)))  # fmt: skip
    encode, read_once = pipe.encode_references, pipeline_module.read_video_once

    def encode_per_branch(*args):
        return [encode(*args) for _ in range(branches)][-1]

    def read_twice(path, num_frames, area):
        frames = read_reference_video(path, num_frames, area, VLM_VIDEO_OPTIONS).frames
        return frames, read_vlm_video(path)

    pipe.encode_references, pipeline_module.read_video_once = encode_per_branch, read_twice
    try:
        yield
    finally:
        del pipe.encode_references
        pipeline_module.read_video_once = read_once


# Part B adds its rows here (`fast`, `faster`, fp8, attention backends, compile).
OPTIONS: dict[str, Option] = {
    "sequential": Option({"batch_cfg": False}),
    "batched": Option({"batch_cfg": True}),
    "release": Option({"batch_cfg": False}, release_method),
}


def golden_requests() -> tuple[VinoPipeline, list[Request]]:
    fixture = GOLDEN / "fixture"
    pipe = VinoPipeline.from_pretrained(
        fixture / "vino.ckpt", vlm=str(fixture / "qwen"), base=str(fixture / "hunyuan"), memory_profile="cpu"
    )
    pipe.set_progress_bar_config(disable=True)
    cases = {c["name"]: c for c in json.loads((GOLDEN / "cases.json").read_text())}
    requests = []
    for name in GOLDEN_CASES:
        case = cases[name]
        spec = read_task_file(GOLDEN / case["task_file"])[case["row"]]
        call = dict(
            prompt=spec.caption, images=spec.image_paths, video=spec.video_path, task=spec.task, base_image=spec.base_image,
            num_frames=case["num_frames"], height=case["height"], width=case["width"],
            num_inference_steps=case["num_inference_steps"], guidance_scale=case["guidance_scale"],
            image_guidance_scale=case["guidance_scale_image"], shift=case["timestep_shift"], seed=case["seed"],
        )  # fmt: skip
        requests.append(Request("golden", name, call, GOLDEN))
    return pipe, requests


def world_requests() -> tuple[VinoPipeline, list[Request]]:
    defaults, requests = demo_defaults(), []
    for task, overrides in WORLD_TASKS.items():
        d = {**defaults[task], **overrides}
        call = dict(
            prompt=d["instruction"], images=d["images"], video=d["video"], task=d["task"], base_image=d["base_image"],
            num_frames=d["num_frames"], height=d["height"], width=d["width"], num_inference_steps=d["num_inference_steps"],
            guidance_scale=d["guidance_scale"], image_guidance_scale=d["image_guidance_scale"], shift=d["shift"], seed=0,
        )  # fmt: skip
        requests.append(Request("world", task + ("+imgcfg" if overrides else ""), call, REPO_ROOT))
    return load_world_pipeline(), requests


def psnr(ours: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((ours.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(PEAK**2 / mse)


def run(pipe: VinoPipeline, request: Request, option: Option) -> tuple[float, int, np.ndarray]:
    """Seconds, MMDiT forwards and frames of one request under one option."""
    forwards = []
    hook = pipe.transformer.register_forward_hook(lambda *_: forwards.append(1))
    with contextlib.chdir(request.cwd), option.context(pipe, request):
        try:
            start = time.perf_counter()
            frames = pipe(**request.call, **option.call).frames
            seconds = time.perf_counter() - start
        finally:
            hook.remove()
    return seconds, len(forwards), frames


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sets", nargs="+", default=["golden", "world"], choices=["golden", "world"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    loaders = {"golden": golden_requests, "world": world_requests}
    work = [(pipe, request) for pipe, requests in (loaders[s]() for s in args.sets) for request in requests]

    seconds = {(r.name, o): [] for _, r in work for o in OPTIONS}
    forwards, frames = {}, {}
    for repeat in range(args.repeats + 1):  # round 0 warms up
        for pipe, request in work:
            for name, option in OPTIONS.items():
                took, count, out = run(pipe, request, option)
                forwards[request.name, name], frames[request.name, name] = count, out
                if repeat:
                    seconds[request.name, name].append(took)

    median = {key: statistics.median(values) for key, values in seconds.items()}
    print(f"threads={args.threads} repeats={args.repeats}")
    print("| set | request | option | forwards | s/request (median) | vs sequential | max abs | PSNR dB |")
    print("|---|---|---|---|---|---|---|---|")
    for _, request in work:
        reference = frames[request.name, "sequential"]
        for name in OPTIONS:
            key, out = (request.name, name), frames[request.name, name]
            ratio = median[request.name, "sequential"] / median[key]
            max_abs = int(np.abs(out.astype(int) - reference.astype(int)).max())
            print(f"| {request.set} | {request.name} | {name} | {forwards[key]} | {median[key]:.3f} | {ratio:.2f}x "
                  f"| {max_abs} | {psnr(out, reference):.1f} |")  # fmt: skip

    def speedup(name: str) -> float:
        if name not in OPTIONS:
            return math.nan
        return statistics.median(median[r.name, "sequential"] / median[r.name, name] for _, r in work)

    golden = [r.name for _, r in work if r.set == "golden"]
    if golden:
        ratio = statistics.median(median[n, "batched"] / median[n, "release"] for n in golden)
        print(f"ours_vs_release={ratio:.2f}")
    fast_psnr = math.nan
    if "fast" in OPTIONS:
        fast_psnr = min(psnr(frames[r.name, "fast"], frames[r.name, "sequential"]) for _, r in work)
    print(f"speedup_batched={speedup('batched'):.2f} speedup_fast={speedup('fast'):.2f} psnr_fast_db={fast_psnr:.1f}")


if __name__ == "__main__":
    main()
