"""How well the pixel scorer reads shape kinds on soft edges.

    python -m benchmarks.scorer_blur [--scenes 64] [--scorer PATH]

Over the first `--scenes` held-out t2i requests of the evaluation (`evaluate.task_rng`), the share of single shapes
whose kind the scorer reads right on the ground truth, on the ground truth blurred by a Gaussian (1 and 1.5 px),
and on the shipped VAE's reconstructions (`evaluate --ceiling`). `--scorer` loads another version of
`vino_app/world/scoring.py` in its place, e.g. the first scorer:

    git show 70c24d5:vino_app/world/scoring.py > /tmp/first_scoring.py
    python -m benchmarks.scorer_blur --scorer /tmp/first_scoring.py
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from scipy import ndimage

from vino_app.evaluate import target_latents, task_rng
from vino_app.world import load_world_pipeline, scoring
from vino_app.world.samples import make_sample

BLURS = (1.0, 1.5)  # Gaussian sigmas in pixels


def load_scorer(path: Path | None) -> ModuleType:
    """`vino_app.world.scoring`, or the module in `path` loaded as a sibling of it (its relative imports resolve)."""
    if path is None:
        return scoring
    spec = importlib.util.spec_from_file_location("vino_app.world.scoring_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def kinds_read_right(scorer: ModuleType, image: np.ndarray, shapes) -> list[bool]:
    detected = scorer.detect(image)[1]
    return [scorer.shape_checks(detected, s)["kind"] for s in shapes]


@torch.no_grad()
def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=64)
    parser.add_argument("--scorer", type=Path, help="a scoring.py to measure instead of the present one")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    scorer, pipe, rng = load_scorer(args.scorer), load_world_pipeline(), task_rng(1234, "t2i")
    right: dict[str, list[bool]] = {}
    for _ in range(args.scenes):
        sample = make_sample(rng, "t2i", long=True, split="eval")
        truth, shapes = sample.target[0], sample.scenes[0].shapes
        images = {"ground truth": truth}
        for sigma in BLURS:
            blurred = ndimage.gaussian_filter(truth.astype(float), sigma=(sigma, sigma, 0)).round().astype(np.uint8)
            images[f"ground truth, Gaussian blur {sigma:g} px"] = blurred
        images["the shipped VAE's reconstructions"] = pipe.decode(target_latents(pipe, sample))[0]
        for name, image in images.items():
            right.setdefault(name, []).extend(kinds_read_right(scorer, image, shapes))
    shapes_seen = len(next(iter(right.values())))
    print(
        f"| images ({args.scenes} scenes, {shapes_seen} shapes; scorer {args.scorer or 'present'}) | kinds read right |"
    )
    print("|---|---|")
    for name, values in right.items():
        print(f"| {name} | {np.mean(values):.2f} |")


if __name__ == "__main__":
    main()
