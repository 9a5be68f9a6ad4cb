"""`python -m vino_app generate`: run task files in the released format, or one request from flags."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .acceleration import ATTENTION_BACKENDS, CACHE_MODES
from .errors import CheckpointError, VinoError, VinoInputError
from .memory import PROFILES
from .parallel import PARALLEL_KINDS
from .tasks import TASK_LABELS, Task, TaskSpec, infer_task, read_task_file, task_for_label


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vino_app", description="VINO image and video generation and editing"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate from a task file or from flags")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--task-file",
        help="JSON list of {index, task, caption, ref_image_paths, ref_video_path, ref_image_have_base}",
    )
    src.add_argument("--prompt", help="the instruction; name references as 'Image 1', 'Video 1'")
    gen.add_argument(
        "--image", action="append", default=[], help="reference image (repeat, in order: Image 1, Image 2, ...)"
    )
    gen.add_argument("--video", help="reference video (Video 1)")
    gen.add_argument("--task", help=f"task label ({', '.join(TASK_LABELS)}); inferred from the references if omitted")
    gen.add_argument("--base-image", action="store_true", help="the last image is the one being edited")
    gen.add_argument(
        "--frames", type=int, default=None, help="4k+1 frames of a video task (default: the task's, 85); images make 1"
    )
    gen.add_argument("--height", type=int, help="output height (multiple of 16)")
    gen.add_argument("--width", type=int, help="output width (multiple of 16)")
    gen.add_argument("--area", type=int, help="output area in pixels instead of height/width")
    gen.add_argument("--steps", type=int, default=None, help="sampling steps (default: the task's, 50)")
    gen.add_argument("--cfg", type=float, default=None, help="text CFG (default: the task's: 5 images, 7 video)")
    gen.add_argument(
        "--image-cfg",
        type=float,
        default=None,
        help="image CFG; > 1 adds the image-free branch (default: the task's, 3 with reference images, else 1 = off)",
    )
    gen.add_argument("--shift", type=float, default=None, help="timestep shift (default: the task's, as --cfg)")
    gen.add_argument("--negative-prompt", default=None)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--rewrite", action="store_true", help="let the VLM expand the instruction first")
    gen.add_argument("--output-dir", default="outputs")
    gen.add_argument(
        "--model",
        default=None,
        help="demo | tiny | released | a folder in the released layout, as `python app.py --model`; overrides the "
        "three paths below. A model folder with a defaults.json (the demo model) supplies the defaults of the "
        "frames, size, steps, CFG and shift flags left out",
    )
    gen.add_argument(
        "--checkpoint", default=None, help="vino.ckpt: file, folder or hub repo (default SOTAMak1r/VINO-weight)"
    )
    gen.add_argument("--vlm", default=None, help="Qwen3-VL repo or folder (default Qwen/Qwen3-VL-4B-Instruct)")
    gen.add_argument(
        "--base", default=None, help="HunyuanVideo repo or folder (default hunyuanvideo-community/HunyuanVideo)"
    )
    gen.add_argument("--profile", choices=sorted(PROFILES), default=None, help="memory profile (default: from GPU)")
    gen.add_argument(
        "--cache", choices=CACHE_MODES, default="off", help="step caching: off (every block every step), fast, faster"
    )
    gen.add_argument(
        "--attention",
        choices=ATTENTION_BACKENDS,
        default="native",
        metavar="BACKEND",
        help=f"MMDiT attention backend: {', '.join(ATTENTION_BACKENDS)} (default native; others need a CUDA GPU)",
    )
    gen.add_argument("--compile", action="store_true", help="torch.compile the repeated MMDiT blocks (regional)")
    gen.add_argument(
        "--parallel",
        choices=PARALLEL_KINDS,
        default=None,
        help="under torchrun / accelerate launch: every process runs every request, its MMDiT sequence split between "
        "them (context parallelism); without it the processes share out the requests",
    )
    gen.add_argument("--degree", type=int, default=None, help="processes per request with --parallel (default: all)")
    plan = sub.add_parser("plan", help="device memory of each memory profile for one request size, on paper")
    plan.add_argument("--profile", choices=["all", *PROFILES], default="all")
    plan.add_argument("--height", type=int, default=480)
    plan.add_argument("--width", type=int, default=848)
    plan.add_argument("--frames", type=int, default=85)
    plan.add_argument("--images", type=int, default=0, help="reference images at the output size")
    return parser


def _specs(args: argparse.Namespace) -> list[TaskSpec]:
    if args.task_file:
        return read_task_file(args.task_file)
    return [TaskSpec("0", args.task or "", args.prompt, list(args.image), args.video, args.base_image)]


def _task_row(args: argparse.Namespace, spec: TaskSpec) -> Task:
    """The task-table row a request runs as: its label, else the one inferred from its references and --frames."""
    label = spec.task or infer_task(len(spec.image_paths), spec.video_path is not None, args.frames or 1)
    return task_for_label(label, spec.base_image) if label in TASK_LABELS else task_for_label("t2i")


def _frames(args: argparse.Namespace, row: Task, recommended: dict) -> int:
    """Image tasks make one frame; video tasks make --frames, by default the model's or else the task's (85)."""
    if not row.is_video:
        return 1
    if args.frames is not None:
        return args.frames  # checked by the pipeline (4k+1), 0 included
    return recommended.get("num_frames") or row.frames


def model_defaults(folder: Path) -> dict:
    """A model folder's recommended settings per task row (its `defaults.json`, as the demo model ships), {} when
    it has none; a file that is not a JSON object of objects is a `CheckpointError` naming it."""
    from .world import DEFAULTS_FILE

    path = folder / DEFAULTS_FILE
    if not path.is_file():
        return {}
    try:
        defaults = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"the model's {DEFAULTS_FILE} is not readable JSON ({exc})") from None
    if not isinstance(defaults, dict) or not all(isinstance(v, dict) for v in defaults.values()):
        raise CheckpointError(f"the model's {DEFAULTS_FILE} must map task names to settings objects")
    return defaults


def _recommended(args: argparse.Namespace, row: Task) -> dict:
    """The model's recommended settings for `row` (a world model's `defaults.json`; the edit row's for clone), {}
    for a model without them (the released weights: the task table's release defaults apply)."""
    defaults = args.model_defaults
    return defaults.get(row.name) or defaults.get(row.label) or {}


def _sampling(args: argparse.Namespace, row: Task, recommended: dict) -> dict:
    """Steps, CFG, shift and size: each flag given, else the model's recommendation, else None (the pipeline then
    applies the release's default from the task table)."""
    flags = {"num_inference_steps": args.steps, "guidance_scale": args.cfg, "image_guidance_scale": args.image_cfg,
             "shift": args.shift}
    chosen = {key: recommended.get(key) if value is None else value for key, value in flags.items()}
    chosen["num_inference_steps"] = chosen["num_inference_steps"] or row.steps
    area = args.area
    if args.height is None and args.width is None and area is None and "height" in recommended:
        area = recommended["height"] * recommended["width"]
    return {**chosen, "height": args.height, "width": args.width, "area": area}


def _run(pipe, specs: list[TaskSpec], args: argparse.Namespace, out_dir: Path, write: bool) -> int:
    """Generate `specs` one after the other; `write`: save results and report them (else only compute: a context-
    parallel helper process). Returns the number of failed tasks."""
    from .export import save_with_sidecar

    failures = 0
    for spec in specs:
        try:
            caption = spec.caption
            if args.rewrite:
                caption = pipe.rewrite_prompt(spec.caption, spec.image_paths, spec.video_path)
            row = _task_row(args, spec)
            recommended = _recommended(args, row)
            settings = dict(
                task=spec.task or None,
                base_image=spec.base_image,
                num_frames=_frames(args, row, recommended),
                **_sampling(args, row, recommended),
                negative_prompt=args.negative_prompt,
                seed=args.seed,
                cache=args.cache,
            )
            result = pipe(caption, spec.image_paths, spec.video_path, **settings)
            spec.caption, spec.task = caption, result.task
            if write:
                path, _ = save_with_sidecar(result.frames, out_dir / spec.index, spec, settings)
                print(f"{spec.index}: {result.task} -> {path}")
        except VinoError as exc:
            failures += 1
            if write:
                print(f"error in task '{spec.index}': {exc}", file=sys.stderr)
    return failures


def main(argv: list[str] | None = None) -> int:
    """One process, or one of several under `torchrun` / `accelerate launch`: the processes share out the task
    file's items (`split_between_processes`), or with `--parallel` all run each item on one sequence split
    between them; the main process prints the summary. Every process returns the same exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "plan":
        from .plan import main as plan_main

        return plan_main(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.degree is not None and args.parallel is None:
            raise VinoInputError(f"--degree {args.degree} needs --parallel ({' or '.join(PARALLEL_KINDS)})")
        specs = _specs(args)
        from .parallel import process_state
        from .pipeline import DEFAULT_BASE, DEFAULT_CHECKPOINT, DEFAULT_VLM, VinoPipeline

        state = process_state()
        device = str(state.device) if state.num_processes > 1 and state.device.type == "cuda" else None
        checkpoint, vlm = args.checkpoint or DEFAULT_CHECKPOINT, args.vlm or DEFAULT_VLM
        base = args.base or DEFAULT_BASE
        args.model_defaults = {}
        if args.model is not None:
            from .studio.models import resolve_model

            source = resolve_model(args.model)
            checkpoint, vlm, base = source.checkpoint, source.vlm, source.base
            args.model_defaults = model_defaults(Path(checkpoint).parent) if source.kind != "released" else {}
        pipe = VinoPipeline.from_pretrained(checkpoint, vlm=vlm, base=base, memory_profile=args.profile, device=device)
        pipe.set_attention_backend(args.attention)
        if args.compile:
            pipe.compile_blocks(dynamic=True)
        if args.parallel:
            pipe.enable_context_parallel(args.parallel, args.degree)
    except VinoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from accelerate.utils import gather_object

    out_dir = Path(args.output_dir)
    if args.parallel:
        failures = _run(pipe, specs, args, out_dir, write=state.is_main_process)
    else:
        with state.split_between_processes(specs) as mine:
            failures = sum(gather_object([_run(pipe, mine, args, out_dir, write=True)]))
    if state.is_main_process:
        by = f" by {state.num_processes} processes" if state.num_processes > 1 else ""
        if failures:
            print(f"{failures} of {len(specs)} tasks failed; the others were written to {out_dir}{by}",
                  file=sys.stderr)
        else:
            print(f"{len(specs)} tasks written to {out_dir}{by}")
    return 1 if failures else 0
