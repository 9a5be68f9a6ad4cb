"""The shipped world model (`models/vino-world`): it loads like the released weights, its defaults and example
files are complete, a fixed request is deterministic and fast, its VAE keeps colours, places and motion, and its
generations take the background, on a few fixed requests the shape colour the prompt names, and put a shape higher
when the prompt says top than when it says bottom."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vino_app.evaluate import vae_ceiling
from vino_app.tasks import TASK_LABELS
from vino_app.world import REPO_ROOT, demo_defaults, demo_model_available, demo_model_dir, load_world_pipeline
from vino_app.world.scoring import detect, detect_background

DEMO_TASKS = ("t2i", "t2v", "i2v", "ti2v", "ti2i", "ti2i_base", "tv2v", "tiv2v")
SETTING_KEYS = (
    "num_inference_steps",
    "guidance_scale",
    "image_guidance_scale",
    "shift",
    "num_frames",
    "height",
    "width",
)


@pytest.fixture(scope="module")
def world_pipe():
    assert demo_model_available(), f"the shipped model is missing from {demo_model_dir()}"
    return load_world_pipeline()


def test_defaults_cover_every_task_with_existing_examples():
    defaults = demo_defaults()
    assert set(defaults) == set(DEMO_TASKS)
    for label, entry in defaults.items():
        assert all(k in entry for k in SETTING_KEYS), label
        assert entry["task"] in TASK_LABELS and entry["instruction"]
        for path in entry["images"] + ([entry["video"]] if entry["video"] else []):
            assert (REPO_ROOT / path).is_file() and path.startswith("assets/world/"), path
    assert (REPO_ROOT / "assets" / "world" / "LICENSE").is_file()


def test_shipped_model_loads_in_the_released_layout(world_pipe):
    assert world_pipe.vae.config.spatial_compression_ratio == 4
    assert world_pipe.condition_encoder.num_queries > 0
    assert world_pipe.transformer.config.use_boundary_tokens


def generate(pipe, prompt, seed=0, **kw):
    d = demo_defaults()["t2i"]
    settings = {k: d[k] for k in ("num_inference_steps", "guidance_scale", "image_guidance_scale", "shift")}
    return pipe(prompt, height=64, width=64, seed=seed, **{**settings, **kw}).frames


def test_fixed_request_is_deterministic_and_fast(world_pipe):
    prompt = "A big red circle in the center, on a white background."
    start = time.perf_counter()
    first = generate(world_pipe, prompt, seed=3)
    elapsed = time.perf_counter() - start
    assert first.shape == (1, 64, 64, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(generate(world_pipe, prompt, seed=3), first)
    assert elapsed < 30  # about 1 s on 2 free cores (docs/demo-model.md); generous for loaded CI machines


def test_shipped_vae_keeps_colours_places_and_motion(world_pipe):
    """Held-out targets through the VAE alone (`evaluate --ceiling`): what a perfect MMDiT could reach."""
    ceiling = vae_ceiling(world_pipe, ("t2i", "t2v"), per_task=4)
    assert ceiling["t2i"]["colour"] == 1.0 and ceiling["t2i"]["position"] == 1.0, ceiling["t2i"]
    assert ceiling["t2i"]["psnr"] > 24.0
    assert ceiling["t2v"]["motion"] >= 0.75, ceiling["t2v"]


@pytest.mark.parametrize("background", ["white", "gray", "black"])
def test_generations_take_the_background_the_prompt_names(world_pipe, background):
    """What the shipped MMDiT has learned best from the text: the background, on every request (shapes' colours on
    part of them, the next test; kinds and places not yet; docs/demo-model.md). Several shapes, places and seeds."""
    prompts = [
        f"A big red circle in the center, on a {background} background.",
        f"A small blue square at the top left and a big green triangle on the right, on a {background} background.",
    ]
    for seed, prompt in enumerate(prompts):
        assert detect_background(generate(world_pipe, prompt, seed=seed)[0]) == background, prompt


@pytest.mark.parametrize(
    ("colour", "background"), [("red", "black"), ("green", "gray"), ("yellow", "black"), ("purple", "white")]
)
def test_generations_take_the_colour_the_prompt_names(world_pipe, colour, background):
    """Fixed requests whose shape colour the shipped MMDiT gets on every seed (`python -m benchmarks.fixed_requests`
    found 13 of the 6 colours x 3 backgrounds right on seeds 0-2; on two draws of 64 held-out requests 0.80 and 0.82
    of single shapes come out in their colour, docs/demo-model.md): a guard against regressions in the prompt, the
    encoder or the sampler, not a measure."""
    prompt = f"A big {colour} circle in the center, on a {background} background."
    for seed in range(3):
        _, found = detect(generate(world_pipe, prompt, seed=seed)[0])
        assert colour in {d.colour for d in found}, (prompt, seed, [d.colour for d in found])


def test_generations_put_the_shape_at_the_top_or_bottom_the_prompt_names(world_pipe):
    """A big red square on white named at the top left / top / top right lands higher than named at the bottom ones,
    by at least 8 px on average, on each of seeds 0-2 (`python -m benchmarks.place_following`, its `down` column: the
    shipped model 39-42 px, the 12 000-step one -1.3 to 0.5 px). The share in the exact named cell is lower (0.44),
    and left / right differ by only 2-8 px (`across`), so only up / down is held here."""
    from benchmarks.place_following import SHAPE, colour_centre, place_prompts

    rows = {row: [prompt for (r, _), prompt in place_prompts() if r == row] for row in (0, 2)}
    for seed in range(3):
        height = {}
        for row, prompts in rows.items():
            centres = [colour_centre(generate(world_pipe, prompt, seed=seed)[0], SHAPE[1]) for prompt in prompts]
            assert all(centres), (seed, prompts, centres)
            height[row] = np.mean([y for _, y in centres])
        assert height[2] - height[0] >= 8.0, (seed, height)


def test_shipped_transformer_config_is_what_training_writes(tmp_path):
    """The training writes `hunyuan/transformer/config.json` byte for byte the same for the same sizes, so a rerun
    leaves the shipped file unchanged."""
    from vino_app.world.model import WorldModelConfig, new_transformer, write_transformer_config

    root = demo_model_dir()
    write_transformer_config(tmp_path, new_transformer(WorldModelConfig.load(root / "world.json")))
    written = (tmp_path / "hunyuan" / "transformer" / "config.json").read_bytes()
    assert written == (root / "hunyuan" / "transformer" / "config.json").read_bytes()
