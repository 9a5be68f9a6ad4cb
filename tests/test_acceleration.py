"""Speed options on the tiny checkpoint set: step caching, attention backends, FP8 storage, regional compile."""

import math
import shutil

import numpy as np
import pytest
import torch

from vino_app import VinoInputError, VinoPipeline

from .conftest import load_tiny

PROMPT = "a red circle on a long blue table"
STEPS = 50  # the release's steps: on these random weights `fast` skips only a few of them, `faster` many
RUN = dict(num_inference_steps=STEPS, area=64 * 64, num_frames=5, seed=3)
MIN_PSNR_DB = 25.0  # cached against uncached frames: 56-80 dB measured on this request


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def counted(pipe: VinoPipeline, **kwargs) -> tuple[np.ndarray, int]:
    """Frames and MMDiT forwards computed (calls of the last block's attention: a cached step skips it)."""
    last = pipe.transformer.single_transformer_blocks[-1]
    calls = []
    hook = last.attn.to_q.register_forward_hook(lambda *_: calls.append(1))
    try:
        frames = pipe(PROMPT, **RUN, **kwargs).frames
    finally:
        hook.remove()
    return frames, len(calls)


@pytest.fixture(scope="module")
def uncached(pipe):
    return counted(pipe, batch_cfg=False)


def test_cache_off_is_the_sequential_path(pipe, uncached):
    frames, forwards = counted(pipe, cache="off", batch_cfg=False)
    assert np.array_equal(frames, uncached[0]) and forwards == uncached[1] == 2 * STEPS
    assert not pipe.transformer.is_cache_enabled


def test_fast_and_faster_skip_forwards_and_stay_close(pipe, uncached):
    fast, fast_forwards = counted(pipe, cache="fast")
    faster, faster_forwards = counted(pipe, cache="faster")
    assert faster_forwards <= fast_forwards < uncached[1]
    assert psnr(fast, uncached[0]) >= psnr(faster, uncached[0]) >= MIN_PSNR_DB
    assert not pipe.transformer.is_cache_enabled  # the hooks are removed after the request


def test_each_cfg_branch_has_its_own_cache_context(pipe, monkeypatch):
    names = []
    own_context = pipe.branch_context
    monkeypatch.setattr(pipe, "branch_context", lambda name: names.append(name) or own_context(name))
    # the same words as PROMPT: a text as long, so that one shared context can run at all
    run = dict(cache="faster", negative_prompt="a blue table on a long red circle")
    own, _ = counted(pipe, **run)
    assert names == ["branch0", "branch1"] * STEPS
    monkeypatch.setattr(pipe, "branch_context", lambda name: pipe.transformer.cache_context("shared"))
    shared, _ = counted(pipe, **run)
    # one context for both branches hands each branch the other one's cached residuals
    uncached, _ = counted(pipe, batch_cfg=False, negative_prompt=run["negative_prompt"])
    assert psnr(own, uncached) > psnr(shared, uncached)


def test_unknown_options_are_clear_errors(pipe):
    with pytest.raises(VinoInputError, match="cache: unknown mode 'turbo'; choose one of off, fast, faster"):
        pipe(PROMPT, num_inference_steps=1, cache="turbo")
    with pytest.raises(VinoInputError, match="attention: unknown backend 'warp'; choose one of flash, .*native"):
        pipe.set_attention_backend("warp")
    with pytest.raises(VinoInputError, match="attention backend 'flash' needs a CUDA GPU; on the CPU use 'native'"):
        pipe.set_attention_backend("flash")


def test_native_attention_equals_the_default(tiny_root, uncached):
    pipe = load_tiny(tiny_root)
    pipe.set_attention_backend("native")
    processors = pipe.transformer.attn_processors.values()  # the token refiner's calls SDPA itself
    assert {p._attention_backend for p in processors if hasattr(p, "_attention_backend")} == {"native"}
    assert np.array_equal(counted(pipe, batch_cfg=False)[0], uncached[0])


def test_backends_without_masks_run_every_branch(tiny_root):
    """flash and sage take no attention mask (diffusers refuses one). PyTorch's flash kernel (`_native_flash`)
    refuses it the same way and runs on the CPU in bf16: the stand-in for them here. No unpadded text may carry a
    mask (the token refiner's included), and branches of different text lengths run one by one."""
    paths = dict(vlm=str(tiny_root / "qwen"), base=str(tiny_root / "hunyuan"), device="cpu")
    pipe = VinoPipeline.from_pretrained(tiny_root / "vino.ckpt", memory_profile="full", **paths)  # bf16
    pipe.set_progress_bar_config(disable=True)
    masked, masked_forwards = counted(pipe)
    pipe.transformer.set_attention_backend("_native_flash")
    pipe.attention_backend = "_native_flash"  # what `set_attention_backend` records for 'flash' on a GPU
    try:
        unmasked, forwards = counted(pipe)
    finally:
        pipe.set_attention_backend("native")  # diffusers also makes the backend every model's default
    assert (masked_forwards, forwards) == (STEPS, 2 * STEPS)  # the prompt and the negative one: lengths differ
    assert psnr(unmasked, masked) >= MIN_PSNR_DB


def test_fp8_profile_stores_float8_and_computes_close_to_bf16(tiny_root):
    paths = dict(vlm=str(tiny_root / "qwen"), base=str(tiny_root / "hunyuan"), device="cpu")
    fp8 = VinoPipeline.from_pretrained(tiny_root / "vino.ckpt", memory_profile="fp8", **paths)
    full = VinoPipeline.from_pretrained(tiny_root / "vino.ckpt", memory_profile="full", **paths)
    block = fp8.transformer.transformer_blocks[0]
    assert block.attn.to_q.weight.dtype == torch.float8_e4m3fn and block.ff.net[2].weight.dtype == torch.float8_e4m3fn
    assert fp8.transformer.proj_out.weight.dtype == torch.bfloat16  # the output projection stays in compute dtype
    assert full.transformer.transformer_blocks[0].attn.to_q.weight.dtype == torch.bfloat16
    run = dict(num_inference_steps=4, area=64 * 64, seed=1)
    assert psnr(fp8(PROMPT, **run).frames, full(PROMPT, **run).frames) >= MIN_PSNR_DB


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on the CPU (inductor) needs a C compiler; none on PATH")
def test_compiled_blocks_match_uncompiled(tiny_root):
    pipe = load_tiny(tiny_root)
    run = dict(num_inference_steps=2, area=64 * 64, seed=2, batch_cfg=False)
    eager = pipe(PROMPT, **run).frames
    pipe.compile_blocks(dynamic=True)
    compiled = pipe(PROMPT, **run).frames
    block = pipe.transformer.transformer_blocks[0]
    assert block._compiled_call_impl is not None  # nn.Module.compile, as compile_repeated_blocks does it
    diff = np.abs(compiled.astype(int) - eager.astype(int))
    assert diff.max() <= 2 and (diff == 0).mean() > 0.95
