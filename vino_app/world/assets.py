"""Example inputs rendered by the world (`assets/world/`) and the model's `defaults.json`.

    python -m vino_app.world.assets            # rewrites both for models/vino-world
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..export import save_mp4
from . import DEFAULTS_FILE, REPO_ROOT, demo_model_dir
from .samples import EVALUATED_TASKS, make_sample
from .scene import CANVAS

ASSETS_DIR = REPO_ROOT / "assets" / "world"
# Sampler settings chosen on held-out requests (docs/demo-model.md); 64x64 output, 9-frame videos.
SETTINGS = {
    "num_inference_steps": 20,
    "guidance_scale": 4.0,
    "image_guidance_scale": 1.0,
    "shift": 2.0,
}
TASK_SETTINGS: dict[str, dict] = {task: {} for task in EVALUATED_TASKS}
# Preset examples of tasks the world has no data for, drawn from its closest task (it cannot clone motion).
STAND_IN_TASKS = {"clone": "tiv2v"}
LICENSE_NOTE = (
    "The images and videos in this folder are rendered by the project's procedural world\n"
    "(vino_app/world, `python -m vino_app.world.assets`). They are released under CC0 1.0:\n"
    "no rights reserved, use them for anything.\n"
)


def example_files(task: str, seed: int, folder: Path) -> dict:
    """Render one held-out example of `task` (or of its `STAND_IN_TASKS` world task) into `folder`: its instruction
    and repo-relative reference paths."""
    stream = [*EVALUATED_TASKS, *STAND_IN_TASKS].index(task)
    sample = make_sample(np.random.default_rng([seed, stream]), STAND_IN_TASKS.get(task, task), long=True, split="eval")
    images = []
    for i, image in enumerate(sample.images, start=1):
        path = folder / f"{task}_image{i}.png"
        Image.fromarray(image).save(path)
        images.append(path.relative_to(REPO_ROOT).as_posix())
    video = None
    if sample.video is not None:
        path = save_mp4(sample.video, folder / f"{task}_video1.mp4")
        video = path.relative_to(REPO_ROOT).as_posix()
    return {
        "task": sample.pipeline_task,
        "instruction": sample.prompt,
        "images": images,
        "video": video,
        "base_image": sample.base_image,
        "num_frames": sample.num_frames,
        "height": CANVAS,
        "width": CANVAS,
    }


def write_demo_files(model_dir: Path = demo_model_dir(), folder: Path = ASSETS_DIR, seed: int = 7) -> dict:
    """Write the example references under `folder` (stand-in tasks too) and `model_dir/defaults.json`; return the
    defaults."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "LICENSE").write_text(LICENSE_NOTE)
    defaults = {
        task: {**SETTINGS, **TASK_SETTINGS[task], **example_files(task, seed, folder)} for task in EVALUATED_TASKS
    }
    for task in STAND_IN_TASKS:
        example_files(task, seed, folder)
    (model_dir / DEFAULTS_FILE).write_text(json.dumps(defaults, indent=1))
    return defaults


if __name__ == "__main__":
    print(json.dumps(write_demo_files(), indent=1))
