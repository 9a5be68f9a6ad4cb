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
- `down` / `across`: how much lower the squares named in the bottom row land than those named in the top row, and
  how much further right those named in the right column land than those in the left column (px, mean centres
  within a seed; the range over seeds). Exactly on the cells: 40 px; a model that ignores the words: about 0.
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
    right, spreads, down, across = [], [], [], []
    for seed in range(seeds):
        centres = {}
        for cell, prompt in place_prompts():
            frame = pipe(prompt, height=64, width=64, seed=seed, **settings).frames[0]
            centre = colour_centre(frame, SHAPE[1])
            right.append(centre is not None and cell_of(*centre) == cell)
            if centre is not None:
                centres[cell] = centre
        if len(centres) > 1:
            points = np.array(list(centres.values()))
            spreads.append(float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean())))
        down.append(separation(centres, axis=1))
        across.append(separation(centres, axis=0))
    return {
        "right": float(np.mean(right)),
        "spread": float(np.mean(spreads)) if spreads else float("nan"),
        "down": (float(np.nanmin(down)), float(np.nanmax(down))),
        "across": (float(np.nanmin(across)), float(np.nanmax(across))),
        "n": len(right),
    }


def separation(centres: dict[tuple[int, int], tuple[float, float]], axis: int) -> float:
    """Mean centre coordinate (`axis` 1: y, 0: x) of the squares named in the last row / column minus that of the
    first row / column; NaN when one side has no square."""
    line = lambda cell: cell[0] if axis == 1 else cell[1]  # noqa: E731
    sides = [[centres[c][axis] for c in centres if line(c) == index] for index in (0, 2)]
    return float(np.mean(sides[1]) - np.mean(sides[0])) if all(sides) else float("nan")


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
    print(
        "| model | right (chance 0.11) | spread px (0 = ignores places, 23.1 = on the cells) "
        "| down px | across px | n |"
    )
    print("|---|---|---|---|---|---|")
    for model in args.models:
        r = place_following(model, defaults, args.seeds)
        span = lambda pair: f"{pair[0]:.1f} to {pair[1]:.1f}"  # noqa: E731
        print(
            f"| {model} | {r['right']:.2f} | {r['spread']:.1f} | {span(r['down'])} | {span(r['across'])} | {r['n']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
