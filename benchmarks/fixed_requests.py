"""Which fixed single-shape requests a world model gets right on every seed: the pick behind the shipped model's
fixed-request tests (`tests/test_demo_model.py`).

    python -m benchmarks.fixed_requests --model models/vino-world --seeds 3 --threads 1

Colours: "A big <colour> circle in the center, on a <background> background." for the 6 colours x 3 backgrounds,
right when a shape of that colour is detected (`scoring.detect`). Places: `place_following`'s big red square on
white in each of the 9 places, right when its red centre lies in the named grid cell. Generated through the public
pipeline at the t2i settings of `--defaults` (the shipped model's `defaults.json` unless given).
Prints, per request, on how many seeds it came out right, and the requests right on all of them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from benchmarks.place_following import SHAPE, colour_centre, place_prompts
from vino_app.evaluate import call_settings
from vino_app.world import DEFAULTS_FILE, demo_model_dir, load_world_pipeline
from vino_app.world.scene import BACKGROUNDS, COLOURS, cell_name, cell_of
from vino_app.world.scoring import detect


def colour_prompt(colour: str, background: str) -> str:
    return f"A big {colour} circle in the center, on a {background} background."


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=demo_model_dir())
    parser.add_argument("--defaults", type=Path, default=demo_model_dir() / DEFAULTS_FILE)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_world_pipeline(args.model)
    settings = call_settings(json.loads(args.defaults.read_text()), "t2i")
    image = lambda prompt, seed: pipe(prompt, height=64, width=64, seed=seed, **settings).frames[0]  # noqa: E731

    colours = {}
    for colour in COLOURS:
        for background in BACKGROUNDS:
            found = [detect(image(colour_prompt(colour, background), seed))[1] for seed in range(args.seeds)]
            colours[colour, background] = sum(colour in {d.colour for d in shapes} for shapes in found)
    places = {}
    for cell, prompt in place_prompts():
        centres = [colour_centre(image(prompt, seed), SHAPE[1]) for seed in range(args.seeds)]
        places[cell] = sum(c is not None and cell_of(*c) == cell for c in centres)

    print(f"| colour | background | right of {args.seeds} seeds |\n|---|---|---|")
    for (colour, background), right in colours.items():
        print(f"| {colour} | {background} | {right} |")
    print(f"\n| place of a big red square on white | right of {args.seeds} seeds |\n|---|---|")
    for cell, right in places.items():
        print(f"| {cell_name(cell)} {cell} | {right} |")
    print("\nright on every seed:")
    print("colours:", [pair for pair, right in colours.items() if right == args.seeds])
    print("places:", [cell for cell, right in places.items() if right == args.seeds])


if __name__ == "__main__":
    main()
