"""The world VLM's pre-training: the loss sees only targets, and a stopped run resumes bit for bit."""

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor

from vino_app.world import demo_model_dir
from vino_app.world.vlm_pretraining import IGNORE, collate, draw_example, pretrain

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
