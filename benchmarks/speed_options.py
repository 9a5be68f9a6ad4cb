"""The speed options (step caching, FP8 storage, regional compile, attention backends) against the plain path,
on fixed requests of the demo model (t2i, ti2i with image CFG, t2v, tv2v), in one process.

    python -m benchmarks.speed_options --repeats 3 --threads 1 [--steps 50] [--options off,fast,faster,fp8,compile]

Options run interleaved (request by request, option by option, `--repeats` rounds). Prints per option and request:
MMDiT forwards computed per request (the last block's attention calls), seconds per request and seconds inside the
MMDiT (medians; on the demo model the VLM and the VAE take much of a request), and the decoded frames' difference against `off` (max abs in grey levels, PSNR in dB); then per option the median speed-ups over `off`
(request, MMDiT) and the worst PSNR. Last line: `speedup_fast=Y psnr_fast_db=Z speedup_faster=... psnr_faster_db=...`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from vino_app.acceleration import ATTENTION_BACKENDS, CACHE_MODES
from vino_app.errors import VinoInputError
from vino_app.evaluate import call_settings
from vino_app.world import demo_defaults, demo_model_dir
from vino_app.pipeline import VinoPipeline

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = {  # defaults.json entries; ti2i with image CFG 2 (three branches)
    "t2i": {},
    "ti2i": {"image_guidance_scale": 2.0},
    "t2v": {},
    "tv2v": {},
}
PROFILES = {"fp8": "fp8"}  # options that are memory profiles; the others run on the `cpu` profile's pipeline
DEFAULT_OPTIONS = ("off", "fast", "faster", "fp8", "compile")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of uint8 frames (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def load(model: Path, profile: str) -> VinoPipeline:
    pipe = VinoPipeline.from_pretrained(
        model / "vino.ckpt", vlm=str(model / "qwen"), base=str(model / "hunyuan"), memory_profile=profile, device="cpu"
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def request_kwargs(defaults: dict, task: str, steps: int | None) -> dict:
    entry = defaults[task]
    kwargs = {**call_settings(defaults, task), **REQUESTS[task]}
    if steps:
        kwargs["num_inference_steps"] = steps
    kwargs.update(
        prompt=entry["instruction"],
        images=[str(ROOT / p) for p in entry["images"]],
        video=None if entry["video"] is None else str(ROOT / entry["video"]),
        task=entry["task"],
        num_frames=entry["num_frames"],
        height=entry["height"],
        width=entry["width"],
    )
    return kwargs


def option_pipeline(option: str, pipes: dict, model: Path) -> tuple[VinoPipeline, dict]:
    """The pipeline an option runs on and its call arguments (built once per option)."""
    if option not in pipes:
        pipe = load(model, PROFILES.get(option, "cpu"))
        if option == "compile":
            pipe.compile_blocks(dynamic=True)
        elif option.startswith("attention="):
            pipe.set_attention_backend(option.split("=", 1)[1])
        pipes[option] = pipe
    return pipes[option], {"cache": option} if option in CACHE_MODES else {}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=demo_model_dir())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, help="steps per request (default: the model's defaults.json)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--options", default=",".join(DEFAULT_OPTIONS), help=f"of {CACHE_MODES}, fp8, compile, "
                        f"attention=<{'|'.join(ATTENTION_BACKENDS)}>")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    options = ["off", *[o for o in args.options.split(",") if o != "off"]]
    defaults = demo_defaults(args.model)
    pipes: dict = {}
    usable = []
    for option in options:
        try:
            option_pipeline(option, pipes, args.model)
            usable.append(option)
        except VinoInputError as error:
            print(f"{option}: skipped: {error}")
    seconds = {(o, t): [] for o in usable for t in REQUESTS}
    mmdit = {(o, t): [] for o in usable for t in REQUESTS}
    frames, forwards = {}, {}
    for _ in range(args.repeats + 1):  # the first round warms up (compile) and is not timed
        for task in REQUESTS:
            for option in usable:
                pipe, extra = option_pipeline(option, pipes, args.model)
                block = [*pipe.transformer.transformer_blocks, *pipe.transformer.single_transformer_blocks][-1]
                calls, spans = [], []
                hooks = [
                    block.attn.register_forward_hook(lambda *_: calls.append(1)),
                    pipe.transformer.register_forward_pre_hook(lambda *_: spans.append(-time.perf_counter())),
                    pipe.transformer.register_forward_hook(lambda *_: spans.append(time.perf_counter())),
                ]
                start = time.perf_counter()
                out = pipe(seed=0, **request_kwargs(defaults, task, args.steps), **extra)
                elapsed = time.perf_counter() - start
                for hook in hooks:
                    hook.remove()
                if (option, task) in frames:
                    seconds[option, task].append(elapsed)
                    mmdit[option, task].append(sum(spans))
                frames[option, task], forwards[option, task] = out.frames, len(calls)

    print(f"| option | request | forwards | s (median of {args.repeats}) | MMDiT s | max abs | PSNR dB |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for option in usable:
        ratios, mmdit_ratios, psnrs = [], [], []
        for task in REQUESTS:
            t, m = statistics.median(seconds[option, task]), statistics.median(mmdit[option, task])
            ratios.append(statistics.median(seconds["off", task]) / t)
            mmdit_ratios.append(statistics.median(mmdit["off", task]) / m)
            a, b = frames[option, task], frames["off", task]
            psnrs.append(psnr(a, b))
            max_abs = int(np.abs(a.astype(int) - b.astype(int)).max())
            print(f"| {option} | {task} | {forwards[option, task]} | {t:.3f} | {m:.3f} | {max_abs} | {psnrs[-1]:.1f} |")
        summary[option] = (statistics.median(ratios), min(psnrs), statistics.median(mmdit_ratios))
    for option, (speedup, worst, mmdit_speedup) in summary.items():
        print(f"{option}: median speed-up {speedup:.2f}x per request, {mmdit_speedup:.2f}x in the MMDiT, "
              f"worst PSNR {worst:.1f} dB")
    print(" ".join(f"speedup_{o}={summary[o][0]:.2f} psnr_{o}_db={summary[o][1]:.1f}" for o in ("fast", "faster")
                   if o in summary))


if __name__ == "__main__":
    main()
