"""Measure a world model: `python -m vino_app.evaluate --model models/vino-world`.

Draws held-out requests of every task (the evaluation split, never trained on), generates them through the public
`VinoPipeline` at the model's recommended settings (`defaults.json`), reads the outputs back with the world's
pixel scorer and prints one table per task. `--ceiling` scores the expected outputs passed through the model's VAE
alone (encode, decode): what a perfect MMDiT could reach with that VAE. `--conditioning` prints the training loss
with the prompt and with the negative prompt on t2i requests (how much the MMDiT uses the text), and what swapping
one word of the prompt adds to it (which words it uses). `--compare A B C`
prints the ablation table of several models (`--table a.json b.json` prints it from earlier `--json` results).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .cpu_convolution import use_onednn_conv3d
from .export import save_mp4
from .media import to_model_pixels
from .pipeline import TIMESTEP_SCALE, VinoPipeline, cfg_branches
from .prompt import default_negative_prompt
from .world import DEFAULTS_FILE, demo_model_dir, load_world_pipeline
from .world.language import long_caption
from .world.samples import EVALUATED_TASKS, WorldSample, make_sample
from .world.scene import CELL_CENTRES, COLOURS, KINDS, Scene, free_cells
from .world.scoring import psnr, score

CONDITIONING_SIGMAS = (0.5, 0.8, 0.95)
SWAPPED_WORDS = ("colour", "kind", "place")
HEADLINE = {
    "t2i": "correct",
    "t2v": "motion",
    "ti2i": "correct",
    "ti2i_base": "correct",
    "i2v": "motion",
    "ti2v": "motion",
    "tv2v": "correct",
    "tiv2v": "correct",
}


def call_settings(defaults: dict, task: str) -> dict:
    """Sampler settings of `task` from a defaults.json entry (the keys `VinoPipeline.__call__` takes)."""
    keys = ("num_inference_steps", "guidance_scale", "image_guidance_scale", "shift")
    return {k: defaults[task][k] for k in keys}


def override_settings(defaults: dict, **overrides: float | int | None) -> dict:
    """`defaults` with the given sampler settings (`guidance_scale`, `shift`, `num_inference_steps`, ...) replaced in
    every task; `None` keeps a task's own value."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return {task: {**settings, **given} for task, settings in defaults.items()}


def generate(pipe: VinoPipeline, sample: WorldSample, settings: dict, seed: int, workdir: Path) -> np.ndarray:
    """The model's output `[F, 64, 64, 3]` for one request (a reference video goes through an MP4 file)."""
    video = str(save_mp4(sample.video, workdir / "reference.mp4")) if sample.video is not None else None
    out = pipe(
        sample.prompt,
        [Image.fromarray(i) for i in sample.images],
        video,
        task=sample.pipeline_task,
        base_image=sample.base_image,
        num_frames=sample.num_frames,
        height=sample.target.shape[1],
        width=sample.target.shape[2],
        seed=seed,
        **settings,
    )
    return out.frames


def save_example(sample: WorldSample, output: np.ndarray, folder: Path, scale: int = 3) -> None:
    """`folder/<task>.png`: references | expected | generated (first and last frames of videos), and for videos
    `<task>.gif` / `<task>.mp4` of the generated clip."""
    folder.mkdir(parents=True, exist_ok=True)
    refs = list(sample.images) + ([sample.video[0]] if sample.video is not None else [])
    ends = lambda frames: [frames[0]] if len(frames) == 1 else [frames[0], frames[-1]]  # noqa: E731
    gap = np.full((64, 8, 3), 255, np.uint8)
    tiles = [t for group in (refs, ends(sample.target), ends(output)) if group for t in (*group, gap)][:-1]
    strip = Image.fromarray(np.concatenate(tiles, axis=1))
    strip.resize((strip.width * scale, strip.height * scale), Image.NEAREST).save(folder / f"{sample.task}.png")
    if len(output) > 1:
        frames = [Image.fromarray(f).resize((64 * scale, 64 * scale), Image.NEAREST) for f in output]
        frames[0].save(folder / f"{sample.task}.gif", save_all=True, append_images=frames[1:], duration=125, loop=0)
        save_mp4(output, folder / f"{sample.task}.mp4", {"instruction": sample.prompt})
    (folder / f"{sample.task}.txt").write_text(sample.prompt + "\n")


def task_rng(seed: int, task: str) -> np.random.Generator:
    """The generator of `task`'s held-out requests: the same requests whichever tasks are evaluated together."""
    return np.random.default_rng([seed, EVALUATED_TASKS.index(task)])


def mean_scores(
    measure: Callable[[WorldSample, int], dict[str, float]], tasks=EVALUATED_TASKS, per_task: int = 20, seed: int = 1234
) -> dict[str, dict[str, float]]:
    """Mean of each of `measure(sample, i)`'s figures per task over `per_task` held-out requests (t2i and t2v with
    long captions), with `n` and `s_per_request`."""
    results = {}
    for task in tasks:
        rng = task_rng(seed, task)
        scores, start = [], time.time()
        for i in range(per_task):
            scores.append(measure(make_sample(rng, task, long=True, split="eval"), i))
        results[task] = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
        results[task]["n"] = per_task
        results[task]["s_per_request"] = (time.time() - start) / per_task
    return results


def evaluate(
    pipe: VinoPipeline,
    defaults: dict,
    tasks=EVALUATED_TASKS,
    per_task: int = 20,
    seed: int = 1234,
    examples: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Scores of generations; the first request of each task is saved under `examples` when given."""
    with tempfile.TemporaryDirectory() as tmp:

        def measure(sample: WorldSample, i: int) -> dict[str, float]:
            output = generate(pipe, sample, call_settings(defaults, sample.task), seed + i, Path(tmp))
            if examples is not None and i == 0:
                save_example(sample, output, examples)
            return score(output, sample)

        return mean_scores(measure, tasks, per_task, seed)


@torch.no_grad()
def vae_ceiling(
    pipe: VinoPipeline, tasks=EVALUATED_TASKS, per_task: int = 20, seed: int = 1234
) -> dict[str, dict[str, float]]:
    """Scores of the same requests with each expected output `[F, 64, 64, 3]` encoded and decoded by the VAE in
    place of a generation; `psnr` is the reconstruction's, in dB."""

    def measure(sample: WorldSample, i: int) -> dict[str, float]:
        output = pipe.decode(target_latents(pipe, sample))
        return {**score(output, sample), "psnr": psnr(output, sample.target)}

    return mean_scores(measure, tasks, per_task, seed)


def target_latents(pipe: VinoPipeline, sample: WorldSample) -> torch.Tensor:
    """The expected output's scaled VAE latents (the posterior's mode): `[1, C, T', 16, 16]`."""
    return pipe.vae.encode(to_model_pixels(sample.target)).latent_dist.mode() * pipe.vae.config.scaling_factor


def swap_word(scene: Scene, word: str, rng: np.random.Generator) -> Scene:
    """The scene with its first shape's colour, kind or place (`word`) replaced by another one; a new colour or place
    is one no shape of the scene has."""
    first, others = scene.shapes[0], scene.shapes[1:]
    if word == "colour":
        first = replace(
            first, colour=str(rng.choice([c for c in COLOURS if c not in {s.colour for s in scene.shapes}]))
        )
    elif word == "kind":
        first = replace(first, kind=str(rng.choice([k for k in KINDS if k != first.kind])))
    else:
        free = free_cells(scene)
        row, col = free[int(rng.integers(len(free)))]
        first = replace(first, x=float(CELL_CENTRES[col]), y=float(CELL_CENTRES[row]))
    return scene.with_shapes((first, *others))


@torch.no_grad()
def conditioning_use(
    pipe: VinoPipeline, per_task: int = 20, seed: int = 1234, sigmas=CONDITIONING_SIGMAS
) -> dict[str, dict[str, float]]:
    """How much the MMDiT uses the prompt, on held-out t2i requests: the flow-matching loss (as in training) of
    the velocity at noise levels `s` with the prompt (the scene's long caption, `prompt@s`) and with the negative
    prompt (`negative@s`), and the loss that swapping the first shape's colour, kind or place in the prompt adds
    (`swap_colour@s`, `swap_kind@s`, `swap_place@s`): zero for a word kind the MMDiT ignores."""
    request = pipe.prepare_request([], None, "t2i", 1, 64, 64, None, None)

    def measure(sample: WorldSample, i: int) -> dict[str, float]:
        branches = cfg_branches(sample.prompt, default_negative_prompt(1), 0, False, False, 2.0, 1.0)
        scene, rng = sample.scenes[0], np.random.default_rng([seed, i])
        conditions = {
            "prompt": pipe.encode_branch(branches[0], request),
            "negative": pipe.encode_branch(branches[1], request),
        }
        for word in SWAPPED_WORDS:
            swapped = replace(branches[0], text=long_caption(swap_word(scene, word, rng)))
            conditions[word] = pipe.encode_branch(swapped, request)
        x0 = target_latents(pipe, sample)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed + i))
        losses = {}
        for sigma in sigmas:
            noisy, timestep = (1 - sigma) * x0 + sigma * noise, torch.tensor([sigma * TIMESTEP_SCALE])
            for name, condition in conditions.items():
                velocity = pipe.predict_velocity(noisy, timestep, condition, [])
                losses[f"{name}@{sigma}"] = torch.nn.functional.mse_loss(velocity, noise - x0).item()
            for word in SWAPPED_WORDS:
                losses[f"swap_{word}@{sigma}"] = losses.pop(f"{word}@{sigma}") - losses[f"prompt@{sigma}"]
        return losses

    return mean_scores(measure, ("t2i",), per_task, seed)


def format_metric(name: str, value: float) -> str:
    """Two decimals; four for losses (`name@sigma`), whose differences are small."""
    return f"{value:.4f}" if "@" in name else f"{value:.2f}"


def task_tables(results: dict[str, dict[str, float]]) -> str:
    """One markdown table per task: its metrics."""
    lines = []
    for task, metrics in results.items():
        names = [k for k in metrics if k not in ("n", "s_per_request")]
        lines += [f"**{task}** (n = {metrics['n']}, {metrics['s_per_request']:.1f} s/request)", ""]
        lines += ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        lines += ["| " + " | ".join(format_metric(k, metrics[k]) for k in names) + " |", ""]
    return "\n".join(lines)


def comparison_table(results: dict[str, dict[str, dict[str, float]]], columns: list[str] | None = None) -> str:
    """Models as rows; columns `task.metric` (default: each task's headline metric). A metric a model lacks is "–"."""
    if not columns:
        columns = [f"{t}.{HEADLINE[t]}" for t in EVALUATED_TASKS if all(t in r for r in results.values())]
    cells = [column.split(".", 1) for column in columns]
    lines = ["| model | " + " | ".join(f"{t} {m}" for t, m in cells) + " |", "|---|" + "---|" * len(cells)]
    for name, r in results.items():
        values = [format_metric(m, r[t][m]) if m in r.get(t, {}) else "–" for t, m in cells]
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def merge_results(parts: list[dict[str, dict[str, dict[str, float]]]]) -> dict[str, dict[str, dict[str, float]]]:
    """One `{model: {task: {metric: value}}}` from several `--json` files (an evaluation and a `--conditioning` run
    of the same model, say); a later file's metric replaces an earlier one's."""
    merged: dict[str, dict[str, dict[str, float]]] = {}
    for part in parts:
        for model, tasks in part.items():
            for task, metrics in tasks.items():
                merged.setdefault(model, {}).setdefault(task, {}).update(metrics)
    return merged


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m vino_app.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=demo_model_dir())
    parser.add_argument("--compare", type=Path, nargs="+", help="several model folders: print the ablation table")
    parser.add_argument("--defaults", type=Path, help=f"settings file (default: the model's {DEFAULTS_FILE})")
    parser.add_argument("--tasks", nargs="+", default=list(EVALUATED_TASKS), choices=EVALUATED_TASKS)
    parser.add_argument("--per-task", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--examples", type=Path, help="save the first request of each task here (PNG strips, GIF, MP4)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--guidance-scale", type=float, help="text CFG of every task instead of the settings file's")
    parser.add_argument("--shift", type=float, help="sampler shift of every task instead of the settings file's")
    parser.add_argument(
        "--inference-steps", type=int, help="sampler steps of every task instead of the settings file's"
    )
    parser.add_argument(
        "--ceiling", action="store_true", help="score VAE reconstructions of the expected outputs instead"
    )
    parser.add_argument("--vae", type=Path, help="with --ceiling: a candidate VAE folder in place of the model's")
    parser.add_argument(
        "--conditioning", action="store_true", help="t2i loss with the prompt vs the negative prompt instead"
    )
    parser.add_argument(
        "--table", type=Path, nargs="+", help="only print the ablation table of earlier --json results (merged)"
    )
    parser.add_argument(
        "--columns", nargs="+", metavar="TASK.METRIC", help="the ablation table's columns (default: headlines)"
    )
    args = parser.parse_args(argv)
    overrides = dict(guidance_scale=args.guidance_scale, shift=args.shift, num_inference_steps=args.inference_steps)
    if (args.conditioning or args.ceiling) and any(v is not None for v in overrides.values()):
        parser.error(
            "--guidance-scale, --shift and --inference-steps set the sampler of generations; "
            "--conditioning and --ceiling do not sample"
        )
    if args.vae and not args.ceiling:
        parser.error(
            "--vae replaces the VAE of the --ceiling measurement only (a generation needs the MMDiT trained on it)"
        )
    if args.table:
        results = merge_results([json.loads(path.read_text()) for path in args.table])
        print(comparison_table(results, args.columns))
        return results
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.compare or [args.model]
    results = {}
    for root in models:
        pipe = load_world_pipeline(root)
        if args.conditioning:
            results[str(root)] = conditioning_use(pipe, args.per_task, args.seed)
        elif args.ceiling:
            if args.vae:
                from diffusers import AutoencoderKLHunyuanVideo

                pipe.vae = use_onednn_conv3d(AutoencoderKLHunyuanVideo.from_pretrained(args.vae).eval())
            results[str(args.vae or root)] = vae_ceiling(pipe, args.tasks, args.per_task, args.seed)
        else:
            defaults = override_settings(json.loads((args.defaults or root / DEFAULTS_FILE).read_text()), **overrides)
            results[str(root)] = evaluate(pipe, defaults, args.tasks, args.per_task, args.seed, args.examples)
        name = str(args.vae) if args.ceiling and args.vae else str(root)
        print(f"## {name}\n\n{task_tables(results[name])}", flush=True)
    if len(models) > 1:
        print(comparison_table(results, args.columns))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
