"""The world VLM's pre-training: the loss sees only targets, binding hard negatives, and a stopped run resumes bit for
bit (also one that starts from a fresh random VLM)."""

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor

from vino_app.world import demo_model_dir
from vino_app.world.language import long_caption
from vino_app.world.scene import random_scene
from vino_app.world.vlm_pretraining import IGNORE, collate, colour_swapped, draw_example, main, pretrain

QWEN = demo_model_dir() / "qwen"


def test_labels_cover_exactly_the_targets():
    processor = AutoProcessor.from_pretrained(QWEN)
    rng = np.random.default_rng(3)
    examples = [draw_example(rng) for _ in range(12)]
    assert {image is None for _, _, image in examples} == {True, False}  # text and captioning examples
    inputs, labels = collate(processor, examples)
    for row, (_, target, _) in enumerate(examples):
        kept = labels[row][labels[row] != IGNORE]
        assert processor.tokenizer.decode(kept) == target
    assert "pixel_values" in inputs


def _weights(folder):
    return load_file(folder / "model.safetensors")


def test_a_stopped_run_resumes_bit_for_bit(tmp_path):
    torch.set_num_threads(1)
    whole = pretrain(QWEN, tmp_path / "whole", steps=4, batch=3, lr=1e-3, seed=5)
    pretrain(QWEN, tmp_path / "parts", steps=4, batch=3, lr=1e-3, seed=5, until=2)
    parts = pretrain(QWEN, tmp_path / "parts", steps=4, batch=3, lr=1e-3, seed=5)
    a, b, start = _weights(whole), _weights(parts), _weights(QWEN)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], start[k]) for k in a)  # it trained


def test_the_hard_negative_has_the_same_words_bound_the_other_way():
    rng = np.random.default_rng(0)
    for count in (2, 3):
        scene = random_scene(rng, count)
        swapped = colour_swapped(scene)
        caption, other = long_caption(scene), long_caption(swapped)
        assert caption != other and sorted(caption.split()) == sorted(other.split())
        assert [s.colour for s in swapped.shapes[:2]] == [s.colour for s in scene.shapes[1::-1]]
        assert colour_swapped(swapped) == scene


def test_a_run_from_a_fresh_random_vlm_of_another_depth_resumes(tmp_path):
    torch.set_num_threads(1)
    flags = ["--text-layers", "3", "--steps", "2", "--batch", "2", "--align-batch", "2", "--seed", "1"]
    main([*flags, "--out", str(tmp_path / "whole")])
    main([*flags, "--out", str(tmp_path / "parts"), "--until", "1"])
    main([*flags, "--out", str(tmp_path / "parts")])
    config = (tmp_path / "whole" / "config.json").read_text()
    assert '"num_hidden_layers": 3' in config
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "parts")
    assert all(torch.equal(a[k], b[k]) for k in a)
