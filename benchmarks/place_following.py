"""Whether a world model puts a shape where its prompt says.

    python -m benchmarks.place_following --models models/vino-world outputs/curriculum/single --seeds 3 --threads 1

For each model and seed, generates "A big red square <place>, on a white background." in each of the 9 places
through the public pipeline at the model's t2i defaults (`models/vino-world/defaults.json` unless `--defaults`),
and finds the red square's centre: the centre of mass of the pixels read as red (`scoring.colour_coverage`,
weighted by how red they are). Prints per model:

- `right`: the share of the 9 x seeds outputs whose centre lies in the named place's grid cell (chance 1/9);
- `spread`: the centres' RMS distance (px) from their mean within a seed, averaged over seeds. A model that
  ignores the place words puts the square where the noise says, the same for all 9 prompts of a seed: about 0.
  Centres exactly on the 9 cells' centres give 23.1 px.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vino_app.evaluate import call_settings
from vino_app.world import DEFAULTS_FILE, demo_model_dir, load_world_pipeline
from vino_app.world.language import long_caption
from vino_app.world.scene import CELL_CENTRES, COLOURS, Scene, Shape, cell_of
from vino_app.world.scoring import colour_coverage

SHAPE = ("square", "red", "big")
BACKGROUND = "white"


def place_prompts() -> list[tuple[tuple[int, int], str]]:
    """(grid cell, prompt) for the 9 places."""
    cells = [divmod(c, 3) for c in range(9)]
    scenes = [Scene(BACKGROUND, (Shape(*SHAPE, CELL_CENTRES[col], CELL_CENTRES[row]),)) for row, col in cells]
    return [(cell, long_caption(scene)) for cell, scene in zip(cells, scenes)]


def colour_centre(image: np.ndarray, colour: str) -> tuple[float, float] | None:
    """(x, y) centre of mass of `image`'s `[H, W, 3]` pixels read as `colour`, weighted by their share of it."""
    nearest, share = colour_coverage(image, BACKGROUND)
    weight = share * (nearest == list(COLOURS).index(colour))
    if weight.sum() < 1.0:
        return None
    ys, xs = np.indices(weight.shape)
    return float((xs * weight).sum() / weight.sum()), float((ys * weight).sum() / weight.sum())


def place_following(model: Path, defaults: dict, seeds: int) -> dict[str, float]:
    pipe = load_world_pipeline(model)
    settings = call_settings(defaults, "t2i")
    right, spreads = [], []
    for seed in range(seeds):
        centres = []
        for cell, prompt in place_prompts():
            frame = pipe(prompt, height=64, width=64, seed=seed, **settings).frames[0]
            centre = colour_centre(frame, SHAPE[1])
            right.append(centre is not None and cell_of(*centre) == cell)
            if centre is not None:
                centres.append(centre)
        if len(centres) > 1:
            points = np.array(centres)
            spreads.append(float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean())))
    return {"right": float(np.mean(right)), "spread": float(np.mean(spreads)) if spreads else float("nan"), "n": len(right)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, nargs="+", default=[demo_model_dir()])
    parser.add_argument("--defaults", type=Path, default=demo_model_dir() / DEFAULTS_FILE)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    defaults = json.loads(args.defaults.read_text())
    print("| model | right (chance 0.11) | spread px (0 = ignores places, 23.1 = on the cells) | n |")
    print("|---|---|---|---|")
    for model in args.models:
        r = place_following(model, defaults, args.seeds)
        print(f"| {model} | {r['right']:.2f} | {r['spread']:.1f} | {r['n']} |", flush=True)


if __name__ == "__main__":
    main()
