"""vino.ckpt is converted once into standard folders, reused, and keeps the checkpoint's VLM weights when quantized."""

import bitsandbytes as bnb
import pytest
import torch
from bitsandbytes.functional import dequantize_4bit

from benchmarks.gpu_check import gpu_check_bypassed
from vino_app import VinoPipeline
from vino_app import convert as convert_module
from vino_app.checkpoint import save_checkpoint
from vino_app.tiny import QUANTIZABLE, build_tiny_checkpoints


NORM = "model.language_model.norm.weight"
LINEAR = "model.language_model.layers.0.mlp.down_proj"


def load(root, checkpoint, cache, profile="cpu", **kwargs):
    with gpu_check_bypassed():
        return VinoPipeline.from_pretrained(
            checkpoint,
            vlm=str(root / "qwen"),
            base=str(root / "hunyuan"),
            memory_profile=profile,
            cache_dir=cache,
            **kwargs,
        )


def test_conversion_is_reused_and_redone_when_the_checkpoint_changes(tiny_root, tmp_path, monkeypatch):
    checkpoint = tmp_path / "vino.ckpt"
    checkpoint.write_bytes((tiny_root / "vino.ckpt").read_bytes())
    first = load(tiny_root, checkpoint, tmp_path / "cache")
    (folder,) = (tmp_path / "cache").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["conversion.json", "encoder.safetensors", "transformer"]
    assert (folder / "transformer" / "diffusion_pytorch_model.safetensors").is_file()

    def refuse(*args):
        raise AssertionError("converted again")

    monkeypatch.setattr(convert_module, "write_safetensors", refuse)
    again = load(tiny_root, checkpoint, tmp_path / "cache")
    assert torch.equal(first.transformer.proj_out.weight, again.transformer.proj_out.weight)
    checkpoint.touch()  # a new modification time: another checkpoint as far as the cache knows
    with pytest.raises(AssertionError, match="converted again"):
        load(tiny_root, checkpoint, tmp_path / "cache")


@pytest.fixture(scope="module")
def quant_checkpoint(tmp_path_factory):
    """The quantizable tiny set's checkpoint with its own VLM weights (`mm_encoder.mm_encoder.*`), which differ from
    those in `qwen/`."""
    root = build_tiny_checkpoints(tmp_path_factory.mktemp("tiny-quantizable"), sizes=QUANTIZABLE)
    pipe = load(root, root / "vino.ckpt", tmp_path_factory.mktemp("cache"))
    vlm = pipe.condition_encoder.mm_encoder
    with torch.no_grad():
        vlm.get_submodule(NORM.rsplit(".", 1)[0]).weight.mul_(1.5)
        vlm.get_submodule(LINEAR).weight.neg_()
    path = root / "with-vlm" / "vino.ckpt"
    save_checkpoint(path, pipe.transformer, pipe.condition_encoder, include_vlm=True)
    return root, path, {k: v.clone() for k, v in vlm.state_dict().items()}


@pytest.mark.parametrize("profile", ["cpu", "16gb"])
def test_checkpoint_vlm_weights_are_kept_quantized_or_not(quant_checkpoint, tmp_path, profile):
    root, path, expected = quant_checkpoint
    pipe = load(root, path, tmp_path / "cache", profile, **({} if profile == "cpu" else {"device": "cpu"}))
    vlm = pipe.condition_encoder.mm_encoder
    assert torch.equal(vlm.state_dict()[NORM].float(), expected[NORM].to(vlm.dtype).float())
    layer = vlm.get_submodule(LINEAR)
    if profile == "cpu":
        assert all(torch.equal(v, expected[k]) for k, v in vlm.state_dict().items())
        return
    assert isinstance(layer, bnb.nn.Linear4bit)
    weight = dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
    error = (weight - expected[LINEAR + ".weight"]).norm() / expected[LINEAR + ".weight"].norm()
    assert error < 0.15  # NF4 of the checkpoint's (negated) weight, far from the source's (error 2)
