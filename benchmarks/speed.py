"""Seconds per request of each speed option against the sequential path, on fixed requests, in one process.

    python -m benchmarks.speed [--set tiny|demo|both] [--steps 50] [--repeats 3] [--threads 1] [--options ...]

Requests: t2i, ti2i with image CFG, t2v and tv2v of the tiny golden fixture (`tests/data/vino-golden`, its recorded
settings) and of the demo model (`models/vino-world`: its example instructions and media, the release's task
defaults of `vino_app.tasks.TASKS`: text CFG 5/7, shift 5/7, image CFG 3 for ti2i); every request at `--steps`
(default the release's 50). Every option (`OPTIONS`) runs every request with the same seed, options interleaved
within each repeat after one untimed warm-up round (compilation happens there). Prints per option and request:
MMDiT forwards computed per request (calls of the last block's attention: a batched forward counts once, a step
served from the cache not at all), median seconds per request, and the decoded frames' max abs difference and PSNR
against `sequential`.

Options: `sequential` (one forward per CFG branch), `batched` (the default path), `release` (the release's method
emulated with our engine: branches one by one, the reference latents encoded again for every branch and the
reference video decoded twice, once for the VAE and once for the VLM), `fast` / `faster` (step caching,
`vino_app.acceleration`: TaylorSeer), `fbc` (diffusers' First Block Cache at threshold `FBC_THRESHOLD`, for
comparison; not a user mode), `fp8` (the fp8 memory profile on the CPU: FP8 storage, bf16 compute),
`compile` (regional `torch.compile` of the repeated blocks). fp8, compile and the caches run their branches one
by one, so each is compared with `sequential` alone.

Last lines: `ours_vs_release=R` (median over the golden requests of batched / release seconds) and
`speedup_batched=X speedup_fast=Y psnr_fast_db=Z` (X: median over all requests of sequential / batched seconds;
Y, Z: median speed-up of `fast` and its worst PSNR against `sequential`, over the demo requests when they ran, else
over all; nan for an option that did not run).
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
from diffusers.hooks import FirstBlockCacheConfig

import vino_app.pipeline as pipeline_module
from vino_app import VinoPipeline, read_task_file
from vino_app.encoder import VLM_VIDEO_OPTIONS, read_vlm_video
from vino_app.media import read_reference_video
from vino_app.pipeline import cfg_branches
from vino_app.tasks import STEPS, task_for_label
from vino_app.world import REPO_ROOT, demo_defaults, demo_model_dir

GOLDEN = REPO_ROOT / "tests" / "data" / "vino-golden"
GOLDEN_CASES = ("t2i", "ti2i_base", "t2v", "tv2v")
DEMO_TASKS = ("t2i", "ti2i", "t2v", "tv2v")
PEAK = 255.0
FBC_THRESHOLD = 0.12  # First Block Cache: a step reuses the other blocks' residual when the first one's changed less


@dataclass
class Request:
    """One fixed request: which set, a label, the pipeline's call arguments, the folder its media paths start from."""

    set: str
    name: str
    call: dict
    cwd: Path

    @property
    def key(self) -> str:
        return f"{self.set} {self.name}"


@dataclass
class Option:
    """A speed option: extra call arguments, the memory profile of its pipeline, a setup of that pipeline (run once
    when it is built) and a context each request runs in."""

    call: dict = field(default_factory=dict)
    profile: str = "cpu"
    setup: Callable[[VinoPipeline], None] | None = None
    context: Callable[[VinoPipeline, Request], ContextManager] = lambda pipe, request: contextlib.nullcontext()


@contextlib.contextmanager
def release_method(pipe: VinoPipeline, request: Request) -> Iterator[None]:
    """The release's per-request work on our engine: references encoded once per CFG branch, the reference video
    decoded twice (the VAE's reader and the VLM's)."""
    call = request.call
    row = task_for_label(call["task"], call["base_image"])
    scale = call.get("guidance_scale") or row.text_cfg
    image_scale = call.get("image_guidance_scale") or row.image_cfg
    images = call["images"]
    has_video = call["video"] is not None
    branches = len(cfg_branches("", "", len(images), has_video, call["base_image"], scale, image_scale))
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


@contextlib.contextmanager
def first_block_cache(pipe: VinoPipeline, request: Request) -> Iterator[None]:
    """The pipeline's step cache (one context per CFG branch) with diffusers' First Block Cache instead."""
    cache_config = pipeline_module.cache_config
    pipeline_module.cache_config = lambda mode: FirstBlockCacheConfig(threshold=FBC_THRESHOLD)
    try:
        yield
    finally:
        pipeline_module.cache_config = cache_config


OPTIONS: dict[str, Option] = {
    "sequential": Option({"batch_cfg": False}),
    "batched": Option({"batch_cfg": True}),
    "release": Option({"batch_cfg": False}, context=release_method),
    "fast": Option({"cache": "fast"}),
    "faster": Option({"cache": "faster"}),
    "fbc": Option({"cache": "fast"}, context=first_block_cache),
    "fp8": Option({"batch_cfg": False}, profile="fp8"),
    "compile": Option({"batch_cfg": False}, setup=lambda pipe: pipe.compile_blocks(dynamic=True)),
}
DEFAULT_OPTIONS = ("sequential", "batched", "release", "fast", "faster", "fbc", "fp8", "compile")


def load(root: Path, profile: str) -> VinoPipeline:
    pipe = VinoPipeline.from_pretrained(
        root / "vino.ckpt", vlm=str(root / "qwen"), base=str(root / "hunyuan"), memory_profile=profile, device="cpu"
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def golden_requests(steps: int) -> list[Request]:
    cases = {c["name"]: c for c in json.loads((GOLDEN / "cases.json").read_text())}
    requests = []
    for name in GOLDEN_CASES:
        case = cases[name]
        spec = read_task_file(GOLDEN / case["task_file"])[case["row"]]
        call = dict(
            prompt=spec.caption, images=spec.image_paths, video=spec.video_path, task=spec.task,
            base_image=spec.base_image,
            num_frames=case["num_frames"], height=case["height"], width=case["width"], num_inference_steps=steps,
            guidance_scale=case["guidance_scale"], image_guidance_scale=case["guidance_scale_image"],
            shift=case["timestep_shift"], seed=case["seed"],
        )  # fmt: skip
        requests.append(Request("tiny", name, call, GOLDEN))
    return requests


def demo_requests(steps: int) -> list[Request]:
    defaults = demo_defaults()
    requests = []
    for task in DEMO_TASKS:
        d = defaults[task]
        call = dict(
            prompt=d["instruction"], images=d["images"], video=d["video"], task=d["task"], base_image=d["base_image"],
            num_frames=d["num_frames"], height=d["height"], width=d["width"], num_inference_steps=steps, seed=0,
        )  # fmt: skip
        label = task + ("+imgcfg" if task_for_label(task).image_cfg > 1 else "")
        requests.append(Request("demo", label, call, REPO_ROOT))
    return requests


SETS = {"tiny": (GOLDEN / "fixture", golden_requests), "demo": (demo_model_dir(), demo_requests)}


def psnr(ours: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((ours.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(PEAK**2 / mse)


def run(pipe: VinoPipeline, request: Request, option: Option) -> tuple[float, int, np.ndarray]:
    """Seconds, MMDiT forwards and frames of one request under one option."""
    last = [*pipe.transformer.transformer_blocks, *pipe.transformer.single_transformer_blocks][-1]
    forwards = []
    hook = last.attn.to_q.register_forward_hook(lambda *_: forwards.append(1))
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
    parser.add_argument("--set", choices=["tiny", "demo", "both"], default="both")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--options", nargs="+", choices=list(OPTIONS), default=list(DEFAULT_OPTIONS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    options = {name: OPTIONS[name] for name in ["sequential", *args.options]}
    pipes: dict[tuple[str, str], VinoPipeline] = {}
    work = []  # (set, request)
    for set_name in ("tiny", "demo") if args.set == "both" else (args.set,):
        root, requests = SETS[set_name]
        for name, option in options.items():
            pipe = pipes.get((set_name, option.profile)) if option.setup is None else None
            if pipe is None:
                pipe = load(root, option.profile)
                if option.setup is not None:
                    option.setup(pipe)
            pipes.setdefault((set_name, option.profile), pipe)
            pipes[set_name, name] = pipe
        work += [(set_name, request) for request in requests(args.steps)]

    seconds = {(r.key, o): [] for _, r in work for o in options}
    forwards, frames = {}, {}
    for repeat in range(args.repeats + 1):  # round 0 warms up
        for set_name, request in work:
            for name, option in options.items():
                took, count, out = run(pipes[set_name, name], request, option)
                forwards[request.key, name], frames[request.key, name] = count, out
                if repeat:
                    seconds[request.key, name].append(took)

    median = {key: statistics.median(values) for key, values in seconds.items()}
    print(f"steps={args.steps} threads={args.threads} repeats={args.repeats} torch={torch.__version__}")
    print("| set | request | option | forwards | s/request (median) | vs sequential | max abs | PSNR dB |")
    print("|---|---|---|---|---|---|---|---|")
    for set_name, request in work:
        reference = frames[request.key, "sequential"]
        for name in options:
            key, out = (request.key, name), frames[request.key, name]
            ratio = median[request.key, "sequential"] / median[key]
            max_abs = int(np.abs(out.astype(int) - reference.astype(int)).max())
            print(f"| {set_name} | {request.name} | {name} | {forwards[key]} | {median[key]:.3f} | {ratio:.2f}x "
                  f"| {max_abs} | {psnr(out, reference):.1f} |")  # fmt: skip

    def speedup(name: str, names: list[str]) -> float:
        if name not in options:
            return math.nan
        return statistics.median(median[n, "sequential"] / median[n, name] for n in names)

    def worst_psnr(name: str, names: list[str]) -> float:
        return min(psnr(frames[n, name], frames[n, "sequential"]) for n in names) if name in options else math.nan

    every = [r.key for _, r in work]
    demo = [r.key for s, r in work if s == "demo"] or every
    for name in options:
        print(f"{name}: median speed-up {speedup(name, every):.2f}x over all requests, {speedup(name, demo):.2f}x on "
              f"the demo requests; worst PSNR {worst_psnr(name, every):.1f} dB")  # fmt: skip
    golden = [r.key for s, r in work if s == "tiny"]
    if golden and "release" in options and "batched" in options:
        ratio = statistics.median(median[n, "batched"] / median[n, "release"] for n in golden)
        print(f"ours_vs_release={ratio:.2f}")
    print(f"speedup_batched={speedup('batched', every):.2f} speedup_fast={speedup('fast', demo):.2f} "
          f"psnr_fast_db={worst_psnr('fast', demo):.1f}")


if __name__ == "__main__":
    main()
