"""The world: renderer, captions, pixel scorer, task data, and the training machinery (stages, resume)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from vino_app.world.language import place_phrase
from vino_app.world.model import WorldModelConfig
from vino_app.world.samples import EVALUATED_TASKS, MAKERS, WorldSample, is_held_out, make_sample
from vino_app.world.scene import Motion, Scene, Shape, animate, render, render_video
from vino_app.world.scoring import detect, direction_of, score, travel

SCENE = Scene(
    "gray",
    (
        Shape("circle", "red", "big", 12, 12),
        Shape("square", "blue", "small", 52, 32),
        Shape("triangle", "yellow", "big", 32, 52),
    ),
)


def test_scorer_recovers_a_rendered_scene():
    background, found = detect(render(SCENE))
    assert background == "gray"
    assert len(found) == 3
    read = {(d.colour, d.kind, d.size, d.cell) for d in found}
    assert read == {(s.colour, s.kind, s.size, s.cell) for s in SCENE.shapes}
    assert {s.cell for s in SCENE.shapes} == {(0, 0), (1, 2), (2, 1)}


@pytest.mark.parametrize("background", ["white", "gray", "black"])
def test_scorer_reads_blurred_shapes(background):
    """A decoder's soft edges (here a Gaussian blur, sigma 1 px) keep every shape's colour, kind, size and cell and
    add no shapes: the rim of a blue shape on white is not a purple one, a blurred triangle not a circle."""
    rng = np.random.default_rng(5)
    for _ in range(12):
        scene = Scene(background, make_sample(rng, "t2i").scenes[0].shapes)
        blurred = ndimage.gaussian_filter(render(scene).astype(float), sigma=(1, 1, 0)).round().astype(np.uint8)
        read_background, found = detect(blurred)
        assert read_background == background
        read = sorted((d.colour, d.kind, d.size, d.cell) for d in found)
        assert read == sorted((s.colour, s.kind, s.size, s.cell) for s in scene.shapes)


def test_t2i_background_is_scored_beside_the_shapes():
    sample = make_sample(np.random.default_rng(3), "t2i")
    right = score(sample.target, sample)
    assert right["background"] == 1.0 and right["correct"] == 1.0
    other = next(b for b in ("white", "gray", "black") if b != sample.scenes[0].background)
    wrong = score(render(Scene(other, sample.scenes[0].shapes))[None], sample)
    assert wrong["background"] == 0.0 and wrong["colour"] == 1.0 and wrong["correct"] == 1.0  # not part of `correct`


def test_t2i_reports_the_share_of_shapes_that_are_right():
    scene = Scene("white", (Shape("square", "red", "big", 14, 14), Shape("circle", "blue", "small", 50, 50)))
    sample = WorldSample("t2i", "a prompt", [], None, render(scene)[None], [scene])
    moved = Scene("white", (scene.shapes[0], Shape("circle", "blue", "small", 14, 50)))
    scores = score(render(moved)[None], sample)
    assert scores["position"] == 0.0 and scores["shape_position"] == 0.5
    assert scores["colour"] == scores["shape_colour"] == scores["shape_kind"] == 1.0


@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_motion_direction_of_a_rendered_video(direction):
    scene = Scene("white", (Shape("square", "green", "small", 32, 32),))
    frames = render_video(animate(scene, Motion("move", 0, direction=direction)))
    assert frames.shape == (9, 64, 64, 3)
    assert direction_of(travel(frames, "green")) == direction
    still = render_video(animate(scene, Motion("change", 0, colour="red")))
    assert direction_of(travel(still, "green")) in ("still", "lost")


def test_every_task_has_its_references_and_perfect_truth_scores():
    rng = np.random.default_rng(0)
    expected = {  # (images, video, frames)
        "t2i": ({0}, False, 1),
        "t2i_single": ({0}, False, 1),
        "t2v": ({0}, False, 9),
        "ti2i": ({1}, False, 1),
        "ti2i_base": ({2}, False, 1),
        "i2v": ({1}, False, 9),
        "ti2v": ({2}, False, 9),
        "tv2v": ({0}, True, 9),
        "tiv2v": ({1}, True, 9),
        "reconstruct": ({1}, False, 1),
        "select": ({2, 3}, False, 1),
    }
    for task in MAKERS:
        for _ in range(6):
            sample = make_sample(rng, task)
            images, video, frames = expected[task]
            assert len(sample.images) in images and (sample.video is not None) == video and sample.num_frames == frames
            assert all(i.shape == (64, 64, 3) and i.dtype == np.uint8 for i in sample.images)
            assert ("Image" in sample.prompt) == bool(sample.images)
            if task in EVALUATED_TASKS:
                assert score(sample.target, sample)["correct"] == 1.0, (task, sample.prompt)


def test_evaluation_split_is_disjoint_and_captions_long_and_short():
    rng = np.random.default_rng(1)
    train = [make_sample(rng, "t2i") for _ in range(30)]
    held = [make_sample(rng, "t2i", long=True, split="eval") for _ in range(10)]
    assert not any(is_held_out(s) for s in train) and all(is_held_out(s) for s in held)
    lengths = Counter("background" in s.prompt for s in train)
    assert lengths[True] and lengths[False]


def test_single_shape_curriculum_opens_stage_two_with_one_shape_long_captions(capsys):
    from vino_app.train import parse_args, recipe, stage_at

    stages = recipe((0.1, 0.4, 0.5), single_shapes=0.5)
    assert [stage_at(stages, step, 100).name for step in (5, 15, 35, 60)] == [
        "1 align (queries + connectors)", "2 joint, single shapes", "2 joint (+ MMDiT)", "3 all tasks"
    ]  # fmt: skip
    assert stage_at(recipe((0.1, 0.4, 0.5)), 15, 100).name == "2 joint (+ MMDiT)"  # off: the paper's recipe
    with pytest.raises(SystemExit):
        parse_args(["--single-shapes", "1.5"])
    assert "--single-shapes 1.5" in capsys.readouterr().err
    single = stages[1]
    assert single.train_transformer and single.long_only
    rng = np.random.default_rng(0)
    samples = [make_sample(rng, "t2i_single", long=True) for _ in range(20)]
    assert all(s.task == "t2i" and len(s.scenes[0].shapes) == 1 and "background" in s.prompt for s in samples)
    assert len({s.scenes[0].shapes[0].cell for s in samples}) > 3  # places vary, and the caption names them
    assert all(place_phrase(s.scenes[0].shapes[0]) in s.prompt for s in samples)


TINY = WorldModelConfig(
    text_hidden=32, vocab_size=600, num_queries=4, heads=2, head_dim=16, dual_layers=1, single_layers=1,
    text_embed_dim=32, latent_channels=4, vae_channels=(8, 8, 8),
)  # fmt: skip


def run_training(root, *extra):
    from vino_app.train import CONFIG_FILE, main

    root.mkdir(parents=True, exist_ok=True)
    if not (root / CONFIG_FILE).is_file():
        TINY.save(root / CONFIG_FILE)
    args = ["--out", str(root), "--steps", "4", "--batch", "2", "--vae-steps", "2", "--vae-batch", "2"]
    args += ["--stage-fractions", "0.25", "0.25", "0.5", "--save-every", "2", "--log-every", "100", *extra]
    main(args)
    state = root / "training" / "state.pt"
    return torch.load(state, weights_only=False) if state.is_file() else None  # none after zero steps


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    root = tmp_path_factory.mktemp("straight")
    return root, run_training(root)


def test_training_runs_all_stages_and_resumes_identically(straight, tmp_path):
    root, state = straight
    assert state["step"] == 4 and (root / "vino.ckpt").is_file()
    # stopped mid-pool: steps 2 and 3 (stage 3) train on one pool, which the resumed run rebuilds at step 3
    interrupted = run_training(tmp_path / "resumed", "--until", "3", "--reuse-vae-from", str(root))
    assert interrupted["step"] == 3 and (tmp_path / "resumed" / "vino.ckpt").is_file()  # EMA weights at the stop
    resumed = run_training(tmp_path / "resumed")
    assert resumed["step"] == 4
    for part in ("transformer", "heads"):
        for key, value in state[part].items():
            torch.testing.assert_close(resumed[part][key], value, rtol=0, atol=0)
    # the MMDiT trains in stages 2 and 3
    assert any(not torch.equal(interrupted["transformer"][k], v) for k, v in resumed["transformer"].items())


def test_a_warm_restart_starts_from_the_trained_weights(straight, tmp_path, capsys):
    """`--init-from` copies the model folder's VLM, VAE and sizes and starts from its EMA weights: with no steps the
    weights come back unchanged; with steps, the new run trains them. A folder without weights is refused."""
    from vino_app.checkpoint import read_checkpoint
    from vino_app.train import parse_args

    source = read_checkpoint(straight[0] / "vino.ckpt")
    for steps, changed in (("0", False), ("2", True)):
        root = tmp_path / f"warm{steps}"
        run_training(root, "--init-from", str(straight[0]), "--steps", steps, "--stage-fractions", "0", "0", "1")
        assert (root / "hunyuan" / "vae" / "config.json").is_file() and (root / "qwen").is_dir()
        warm = read_checkpoint(root / "vino.ckpt")
        assert warm.keys() == source.keys()
        assert any(not torch.equal(warm[k], v) for k, v in source.items()) == changed
    with pytest.raises(SystemExit):
        parse_args(["--init-from", str(tmp_path)])  # a folder with no trained weights
    assert f"--init-from {tmp_path}: no vino.ckpt there" in capsys.readouterr().err


def test_trained_tiny_model_loads_through_the_public_path(straight):
    from vino_app.world import load_world_pipeline

    pipe = load_world_pipeline(straight[0])
    out = pipe("A big red circle at the top left, on a white background.", height=64, width=64, num_inference_steps=2)
    assert out.frames.shape == (1, 64, 64, 3)


def test_a_fresh_training_folder_is_measured_without_a_settings_file(straight):
    """`evaluate --conditioning` / `--ceiling` need no `defaults.json` (a training run writes none)."""
    from vino_app.evaluate import main

    assert not (straight[0] / "defaults.json").exists()
    conditioning = main(["--model", str(straight[0]), "--conditioning", "--per-task", "2"])[str(straight[0])]["t2i"]
    assert conditioning["n"] == 2 and all(conditioning[f"{b}@0.95"] > 0 for b in ("prompt", "negative"))
    assert all(f"swap_{word}@0.95" in conditioning for word in ("colour", "kind", "place"))
    ceiling = main(["--model", str(straight[0]), "--ceiling", "--tasks", "t2i", "--per-task", "1"])[str(straight[0])]
    assert 0 < ceiling["t2i"]["psnr"] < 99


def test_swapped_words_change_one_attribute_of_the_first_shape():
    """`--conditioning` compares the prompt (a long caption) with captions where one word of the first shape is
    swapped: a colour or place no shape has, another kind; everything else and the other shapes' words stay."""
    from vino_app.evaluate import swap_word, task_rng
    from vino_app.world.language import long_caption

    first, others = SCENE.shapes[0], SCENE.shapes[1:]
    for seed in range(6):
        changed = {w: swap_word(SCENE, w, np.random.default_rng(seed)) for w in ("colour", "kind", "place")}
        for word, scene in changed.items():
            assert scene.shapes[1:] == others and scene.background == SCENE.background
            new = scene.shapes[0]
            assert (new.colour != first.colour, new.kind != first.kind, new.cell != first.cell) == tuple(
                w == word for w in ("colour", "kind", "place")
            )
            assert long_caption(scene) != long_caption(SCENE)
        assert changed["colour"].shapes[0].colour not in {s.colour for s in SCENE.shapes}
        assert changed["place"].shapes[0].cell not in {s.cell for s in SCENE.shapes}
    rng = task_rng(1234, "t2i")  # the requests `--conditioning` measures: their prompt is the caption swapped from
    assert all(
        s.prompt == long_caption(s.scenes[0]) for s in (make_sample(rng, "t2i", True, "eval") for _ in range(20))
    )


def test_vae_training_stops_and_resumes_bit_for_bit(tmp_path):
    """`--vae-only --vae-until 2` then a rerun equals one uninterrupted run of 4 VAE steps; nothing else trains."""
    from safetensors.torch import load_file

    def vae_run(root, *extra):
        run_training(root, "--vae-only", "--vae-steps", "4", "--save-every", "1", "--threads", "1", *extra)
        return root / "hunyuan" / "vae" / "diffusion_pytorch_model.safetensors"

    whole = vae_run(tmp_path / "whole")
    stopped = vae_run(tmp_path / "parts", "--vae-until", "2")
    assert not stopped.exists() and torch.load(tmp_path / "parts" / "training" / "vae_state.pt")["step"] == 2
    a, b = load_file(whole), load_file(vae_run(tmp_path / "parts"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "whole" / "vino.ckpt").exists()  # --vae-only


def test_training_on_two_processes_averages_their_gradients(straight, tmp_path):
    """`torchrun --nproc_per_node 2` on CPU: the processes draw different requests, reduce one gradient (parts
    that only one process used included) and end with one model. Process 0 draws the one-process run's requests, so
    without the reduction the result would equal that run's."""
    root = tmp_path / "two"
    root.mkdir()
    TINY.save(root / "world.json")
    args = [
        "--out", str(root), "--steps", "4", "--batch", "2", "--vae-steps", "2", "--vae-batch", "2", "--threads", "1"
    ]
    args += [
        "--reuse-vae-from", str(straight[0]), "--stage-fractions", "0.25", "0.25", "0.5",
        "--save-every", "2", "--log-every", "100",
    ]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vino_app.train",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    # torchrun ends with rank 0's
    worker_errors = "\n".join(line for line in result.stderr.splitlines() if "[rank1]" in line)
    assert result.returncode == 0, worker_errors[-3000:] + "\n" + result.stderr[-3000:]
    state = torch.load(root / "training" / "state.pt", weights_only=False)
    assert state["step"] == 4 and (root / "vino.ckpt").is_file()
    one_process = straight[1]["transformer"]
    change = max((one_process[k] - v).abs().max().item() for k, v in state["transformer"].items())
    assert change > 1e-4, f"process 1's gradients were not averaged in (largest difference {change:.1e})"


def test_training_noise_levels_are_shifted_towards_noise():
    """Shift 1 is plain logit-normal (8% of levels above 0.8); shift 3 moves them as the sampler's shift does (39%),
    keeping their order."""
    from vino_app.train import training_sigma

    draw = lambda shift: torch.cat(  # noqa: E731
        [training_sigma(torch.Generator().manual_seed(i), shift) for i in range(4000)]
    )
    plain, shifted = draw(1.0), draw(3.0)
    assert 0.06 < (plain > 0.8).float().mean() < 0.10
    assert 0.35 < (shifted > 0.8).float().mean() < 0.43
    torch.testing.assert_close(shifted, 3 * plain / (1 + 2 * plain))
    assert ((shifted > 0) & (shifted < 1)).all()


def test_ablation_table_merges_evaluations_and_picks_columns(tmp_path, capsys):
    """`evaluate --table` joins an evaluation and a `--conditioning` run of each model into one row per model; losses
    print with four decimals."""
    from vino_app.evaluate import main

    runs = {
        "eval.json": {
            "full": {"t2i": {"background": 1.0, "correct": 0.0}},
            "noq": {"t2i": {"background": 0.25, "correct": 0.0}},
        },
        "cond.json": {"full": {"t2i": {"prompt@0.95": 0.44, "negative@0.95": 0.64}}},
    }
    for name, content in runs.items():
        (tmp_path / name).write_text(json.dumps(content))
    columns = ["t2i.background", "t2i.prompt@0.95", "t2i.negative@0.95"]
    main(["--table", str(tmp_path / "eval.json"), str(tmp_path / "cond.json"), "--columns", *columns])
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "| model | t2i background | t2i prompt@0.95 | t2i negative@0.95 |"
    assert rows[2:] == ["| full | 1.00 | 0.4400 | 0.6400 |", "| noq | 0.25 | – | – |"]


def test_sampler_settings_from_the_command_line_replace_the_settings_file_in_every_task(tmp_path, monkeypatch):
    """`evaluate --guidance-scale 7 --shift 4` (sampler sweeps) evaluates every task at those settings and keeps the
    file's other ones (its sampler steps here)."""
    import vino_app.evaluate as evaluate_module

    settings = {
        task: {"num_inference_steps": 20, "guidance_scale": 4.0, "image_guidance_scale": 1.5, "shift": 2.0}
        for task in ("t2i", "ti2i")
    }
    (tmp_path / "defaults.json").write_text(json.dumps(settings))
    used = {}
    monkeypatch.setattr(evaluate_module, "load_world_pipeline", lambda root: None)
    monkeypatch.setattr(evaluate_module, "evaluate", lambda pipe, defaults, *rest: used.update(defaults) or {})
    evaluate_module.main(["--model", str(tmp_path), "--guidance-scale", "7", "--shift", "4"])
    assert {task: evaluate_module.call_settings(used, task) for task in settings} == {
        task: {"num_inference_steps": 20, "guidance_scale": 7.0, "image_guidance_scale": 1.5, "shift": 4.0}
        for task in settings
    }
    with pytest.raises(SystemExit):  # the loss measures do not sample: a sampler setting there is a mistake
        evaluate_module.main(["--model", str(tmp_path), "--conditioning", "--shift", "4"])


# ---------------------------------------------------------------------------------------------- batched training


@pytest.fixture(scope="module")
def tiny_pipe(straight):
    from diffusers import AutoencoderKLHunyuanVideo

    from vino_app.world.model import assemble_pipeline

    vae = AutoencoderKLHunyuanVideo.from_pretrained(straight[0] / "hunyuan" / "vae")
    return assemble_pipeline(straight[0], TINY, 0, vae)


def test_batched_groups_equal_the_per_request_path(tiny_pipe, tmp_path):
    """A pool of every stage-3 task, drawn with dropout so that every branch kind occurs: each group's one
    condition-encoder and one MMDiT forward give the velocities of the engine's per-request path (`encode_branch`,
    `encode_references`, `predict_velocity` on the request `exact_request_of` prepares); the pool's latents are the
    engine's."""
    from vino_app.media import to_model_pixels
    from vino_app.train import STAGE3_MIX, training_sigma
    from vino_app.world.batching import build_pool, draw_groups, exact_request_of, group_velocity, torch_generator

    pipe = tiny_pipe
    tasks = [task for task in STAGE3_MIX for _ in range(4)]
    rng = np.random.default_rng(0)
    pool = build_pool(pipe, rng, tasks, True, tmp_path, 10.0)
    groups = draw_groups(pool, np.random.default_rng(1), len(pool), 0.3)
    assert sum(len(g) for g in groups) == len(pool) and max(len(g) for g in groups) > 1
    assert len({pool[i].sample.task for g in groups for i, _ in g}) == len(STAGE3_MIX)
    assert {b for g in groups for _, b in g} == {0, 1, 2}
    generator, worst = torch.Generator().manual_seed(0), 0.0
    with torch.no_grad():
        for members in groups:
            sigmas = torch.cat([training_sigma(generator, 3.0) for _ in members])
            noisy = torch.cat([torch.randn(pool[i].latents.shape, generator=generator) for i, _ in members])
            batched = group_velocity(pipe, pool, members, noisy, sigmas)
            for row, (i, b) in enumerate(members):
                item = pool[i]
                request = exact_request_of(pipe, item.sample, tmp_path)
                condition = pipe.encode_branch(item.branches[b], request)
                timestep = sigmas[row : row + 1] * 999
                single = pipe.predict_velocity(noisy[row : row + 1], timestep, condition, item.references)
                worst = max(worst, (batched[row : row + 1] - single).abs().max().item() / single.abs().max().item())
    assert worst < 1e-4, f"largest difference {worst:.1e} of the velocity's largest value"  # float32 rounding
    replay = np.random.default_rng(0)  # the pool's latents are the engine's, drawn from the pool's generator in order
    for item, task in zip(pool, tasks):
        sample = make_sample(replay, task, True)
        references = pipe.encode_references(exact_request_of(pipe, sample, tmp_path), int(replay.integers(2**31)))
        posterior = pipe.vae.encode(to_model_pixels(sample.target)).latent_dist
        latents = posterior.sample(generator=torch_generator(replay)) * pipe.vae.config.scaling_factor
        assert torch.equal(item.latents, latents) and len(item.references) == len(references)
        assert all(torch.equal(a, b) for a, b in zip(item.references, references))


def test_shape_weighted_loss_weighs_the_cells_a_shape_covers():
    """A latent cell's weight is 1 + (w - 1) x the share of its pixels (and of its frames) that shapes cover; with
    w = 1 the loss is the plain MSE, and an error on a covered cell costs more than the same error on background."""
    from vino_app.media import to_model_pixels
    from vino_app.world.batching import latent_shape_weight, weighted_mse

    scene = Scene("white", (Shape("square", "red", "small", 12, 12),))
    pixels = to_model_pixels(render_video(animate(scene, Motion("move", 0, direction="right"))))  # [1, 3, 9, 64, 64]
    weight = latent_shape_weight(pixels, temporal=4, spatial=4, weight=10.0)
    assert weight.shape == (1, 1, 3, 16, 16)
    assert weight.min() == 1.0 and weight.max() == 10.0  # background cells 1, cells inside the square 10
    shape_cell = (weight[0, 0, 0] == 10.0).nonzero()[0].tolist()
    assert weight[0, 0, 0, 15, 15] == 1.0 and 1.0 < weight[0, 0, 1].max() <= 10.0
    target = torch.zeros(1, 4, 3, 16, 16)
    on_shape, on_background = target.clone(), target.clone()
    on_shape[0, :, 0, shape_cell[0], shape_cell[1]] = 1.0
    on_background[0, :, 0, 15, 15] = 1.0
    assert weighted_mse(on_shape, target, weight) > 5 * weighted_mse(on_background, target, weight)
    noise = torch.randn(2, 4, 3, 16, 16)
    plain = weighted_mse(noise, target.expand(2, -1, -1, -1, -1), torch.ones(2, 1, 3, 16, 16))
    torch.testing.assert_close(plain, (noise**2).flatten(1).mean(1))


def test_stage_three_gives_t2i_and_the_edits_most_samples_and_the_stage_order_stays(capsys):
    from vino_app.train import parse_args, recipe

    stages = recipe((0.05, 0.35, 0.6))
    assert [s.name[0] for s in stages] == ["1", "2", "2", "3"]
    mix = stages[-1].mix
    assert (mix["t2i"] + mix["ti2i"] + mix["ti2i_base"]) / sum(mix.values()) > 0.6 and all(w > 0 for w in mix.values())
    refused = [("--pool-size", "2", "at least --batch (4)"), ("--pool-steps", "0", "at least 1")]
    refused.append(("--shape-weight", "0.5", "at least 1"))
    for flag, value, message in refused:
        with pytest.raises(SystemExit):
            parse_args(["--batch", "4", flag, value])
        assert f"{flag} {value}: {message}" in capsys.readouterr().err


def test_pool_requests_use_the_sample_video_at_the_engine_geometry(tiny_pipe, tmp_path):
    """`exact_request_of` keeps `request_of`'s geometry, VLM frame count and rate, with the sample's own frames."""
    from vino_app.world.batching import exact_request_of, request_of

    sample = make_sample(np.random.default_rng(2), "tiv2v", True)
    engine, exact = request_of(tiny_pipe, sample, tmp_path), exact_request_of(tiny_pipe, sample, tmp_path)
    assert (exact.task, exact.num_frames, exact.height, exact.width) == (
        engine.task, engine.num_frames, engine.height, engine.width
    )
    assert np.array_equal(exact.video_frames, sample.video) and exact.video_frames.shape == engine.video_frames.shape
    assert exact.vlm_video.frames.shape == engine.vlm_video.frames.shape
    assert (exact.vlm_video.frames - engine.vlm_video.frames).abs().mean() < 5  # the codec's small changes only


def test_a_vae_with_2x_spatial_compression_keeps_the_mmdits_tokens(tmp_path):
    """`--vae-spatial 2`: 32x32 latents per 64x64 frame, patched 4x4 by the MMDiT, so it still sees 8x8 tokens a
    frame; the folder trains through all stages and loads through the public path."""
    from dataclasses import replace

    from vino_app.world import load_world_pipeline
    from vino_app.world.model import WorldModelConfig, new_transformer, new_vae

    config = replace(TINY, vae_spatial_compression=2)
    latents = new_vae(config).encode(torch.zeros(1, 3, 1, 64, 64)).latent_dist.mode()
    assert latents.shape == (1, 4, 1, 32, 32) and new_transformer(config).config.patch_size == 4
    assert new_transformer(TINY).config.patch_size == 2  # the shipped geometry: 16x16 latents, patch 2
    root = tmp_path / "s2"
    root.mkdir()
    config.save(root / "world.json")
    run_training(root)
    assert WorldModelConfig.load(root / "world.json").vae_spatial_compression == 2
    pipe = load_world_pipeline(root)
    assert pipe.vae.config.spatial_compression_ratio == 2 and pipe.transformer.config.patch_size == 4
    out = pipe("A big red circle at the top left, on a white background.", height=64, width=64, num_inference_steps=2)
    assert out.frames.shape == (1, 64, 64, 3)
