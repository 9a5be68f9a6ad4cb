"""One process of tests/test_parallel.py's `torchrun` run: the tiny set's requests through the Python API with
context parallelism, one through the CLI's `--parallel`, a task file shared out by the CLI (no `--parallel`), and
ring attention on CPU. The main process writes `results.npz` (frames and final latents per case) and
`checks.json`; the CLI writes under `cli/` and `split/`.

usage: parallel_worker.py TINY_ROOT IMAGE WIDE_IMAGE VIDEO TASK_FILE OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from vino_app import VinoInputError, VinoPipeline
from vino_app.cli import main as cli_main
from vino_app.parallel import apply_context_parallel, context_parallel_config, process_state

AREA, STEPS, T2I_SEED = 64 * 64, 2, 1


def cases(image: str, video: str) -> dict[str, dict]:
    """t2i; t2v; i2v with image CFG (three branches, a reference latent and its boundary tokens); tv2v. With a
    square image and the 96x64 test clip every latent stream has an even length (16, 32, 50 and 62 tokens): gloo's
    all-gather needs equal parts (NCCL's does not; see docs/parallel.md)."""
    return {
        "t2i": dict(prompt="A red circle on the left", num_frames=1, seed=T2I_SEED),
        "t2v": dict(prompt="A green triangle moves to the right", num_frames=5, seed=2),
        "i2v": dict(prompt="Image 1 comes alive", images=[image], num_frames=5, image_guidance_scale=2.0, seed=3),
        "tv2v": dict(prompt="Make the square in Video 1 blue", video=video, num_frames=5, seed=4),
    }


def cli_flags(root: Path, out: Path) -> list[str]:
    """The CLI's model, size and sampler flags for the tiny set, writing into `out`."""
    flags = ["--checkpoint", str(root / "vino.ckpt"), "--vlm", str(root / "qwen"), "--base", str(root / "hunyuan")]
    return flags + ["--profile", "cpu", "--steps", str(STEPS), "--area", str(AREA), "--output-dir", str(out)]


def load(root: Path) -> VinoPipeline:
    pipe = VinoPipeline.from_pretrained(
        root / "vino.ckpt", vlm=str(root / "qwen"), base=str(root / "hunyuan"), memory_profile="cpu"
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run_case(pipe: VinoPipeline, case: dict) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 `[F, H, W, 3]` and the final latents of one request."""
    latents = {}
    case = dict(case)
    prompt, images, video = case.pop("prompt"), case.pop("images", []), case.pop("video", None)

    def keep(pipe, step, timestep, tensors):
        latents["last"] = tensors["latents"].cpu().numpy()

    result = pipe(prompt, images, video, area=AREA, num_inference_steps=STEPS, callback_on_step_end=keep, **case)
    return result.frames, latents["last"]


def refusal(pipe: VinoPipeline, kind: str, degree: int | None = None) -> str:
    try:
        pipe.enable_context_parallel(kind, degree)
    except VinoInputError as exc:
        return str(exc)
    return "accepted"


def refusals(root: Path, wide: str) -> dict[str, str]:
    """Our refusals (a degree other than the process count; ring attention on CPU; an uneven stream on CPU, with
    the image `wide`), and the library limitation behind the ring one: forced onto diffusers' native backend (the
    only CPU one), ring attention fails because that backend returns no log-sum-exp."""
    refused = load(root)
    degree = refusal(refused, "ulysses", process_state().num_processes + 1)
    ours = refusal(refused, "ring")
    refused.enable_context_parallel("ulysses")
    try:  # the wide image's i2v stream: 15 + 2 + 30 tokens
        run_case(refused, cases(wide, "")["i2v"])
        uneven = "ran"
    except VinoInputError as exc:
        uneven = str(exc)
    forced = load(root)
    apply_context_parallel(forced.transformer, context_parallel_config("ring", process_state().num_processes))
    try:
        run_case(forced, cases("", "")["t2i"])
        library = "ran"
    except ValueError as exc:
        library = str(exc)
    return {"degree": degree, "ours": ours, "library": library, "uneven": uneven}


def main(root: str, image: str, wide: str, video: str, task_file: str, out: str) -> None:
    root, out = Path(root), Path(out)
    state = process_state()
    pipe = load(root)
    pipe.enable_context_parallel("ulysses", state.num_processes)
    arrays = {}
    for name, case in cases(image, video).items():
        arrays[f"{name}_frames"], arrays[f"{name}_latents"] = run_case(pipe, case)
    parallel = ["--seed", str(T2I_SEED), "--parallel", "ulysses", "--degree", str(state.num_processes)]
    prompt = cases(image, video)["t2i"]["prompt"]
    code = cli_main(["generate", "--prompt", prompt, *parallel, *cli_flags(root, out / "cli")])
    split = cli_main(["generate", "--task-file", task_file, "--frames", "5", *cli_flags(root, out / "split")])
    refused = refusals(root, wide)
    if state.is_main_process:
        np.savez(out / "results.npz", **arrays)
        (out / "checks.json").write_text(json.dumps({"cli_exit": code, "split_exit": split, **refused}))


if __name__ == "__main__":
    main(*sys.argv[1:])
