"""Context parallelism on several GPUs: correctness of Ulysses and ring against one process, and MMDiT scaling.

    torchrun --nproc_per_node N benchmarks/gpu_parallel.py [--frames 85 --height 480 --width 848 --layers 2 --repeats 3]

On CPU (gloo) it runs as a smoke check, Ulysses only: add --frames 5 --height 64 --width 64 --layers 1 --repeats 1.

1. The tiny set (built in a temporary folder), bf16 ('full' profile): each request run without and with
   `enable_context_parallel(kind)`; prints the largest pixel and latent differences (conformance tolerances:
   pixels <= 1 on 99 % of values, latents <= 1e-4 in float32; bf16 gives more).
2. A VinoTransformer3DModel of the released width (24 heads x 128, text 4096) with `--layers` double and
   `2 x --layers` single blocks, random bf16 weights, one forward on the stream of a tv2v request of the given size
   (video reference + boundary tokens + target + text): seconds per forward on one GPU and split N ways, and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from accelerate.utils import broadcast_object_list

from vino_app import VinoPipeline
from vino_app.parallel import PARALLEL_KINDS, enable_context_parallel, process_state
from vino_app.tiny import build_tiny_checkpoints
from vino_app.transformer import VinoTransformer3DModel

TEXT_TOKENS = 512  # chat text + 256 query tokens, about what a short instruction gives
TINY_REQUEST = dict(prompt="A green triangle moves to the right", num_frames=5, area=64 * 64, num_inference_steps=2)


def kinds(device: str) -> tuple[str, ...]:
    """Both on GPUs; Ulysses alone on CPU (a smoke run: ring needs a CUDA attention backend)."""
    return PARALLEL_KINDS if device.startswith("cuda") else ("ulysses",)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def tiny_pipe(root: Path, device: str) -> VinoPipeline:
    pipe = VinoPipeline.from_pretrained(
        root / "vino.ckpt", vlm=str(root / "qwen"), base=str(root / "hunyuan"), memory_profile="full", device=device
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe: VinoPipeline) -> tuple[np.ndarray, torch.Tensor]:
    latents = {}
    request = dict(TINY_REQUEST)
    keep = lambda pipe, step, timestep, tensors: latents.update(last=tensors["latents"])  # noqa: E731
    result = pipe(request.pop("prompt"), callback_on_step_end=keep, **request)
    return result.frames, latents["last"].float().cpu()


def correctness(state, device: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(broadcast_object_list([folder])[0])  # the main process's folder (transformers saves from it)
        if state.is_main_process:
            build_tiny_checkpoints(root)
        state.wait_for_everyone()
        ref_frames, ref_latents = run(tiny_pipe(root, device))
        for kind in kinds(device):
            pipe = tiny_pipe(root, device)
            pipe.enable_context_parallel(kind)
            frames, latents = run(pipe)
            pixels = np.abs(frames.astype(int) - ref_frames.astype(int))
            if state.is_main_process:
                print(
                    f"{kind}: max pixel diff {pixels.max()}, exact {100 * (pixels == 0).mean():.2f} %, "
                    f"max latent diff {(latents - ref_latents).abs().max().item():.2e}"
                )
        state.wait_for_everyone()


def stream_inputs(frames: int, height: int, width: int, device: str) -> dict:
    latent = (1, 16, (frames - 1) // 4 + 1, height // 8, width // 8)
    bf16 = dict(device=device, dtype=torch.bfloat16)
    generator = torch.Generator(device).manual_seed(0)
    return dict(
        hidden_states=torch.randn(latent, generator=generator, **bf16),
        timestep=torch.tensor([500.0], device=device),
        encoder_hidden_states=torch.randn((1, TEXT_TOKENS, 4096), generator=generator, **bf16),
        encoder_attention_mask=torch.ones((1, TEXT_TOKENS), device=device, dtype=torch.int64),
        reference_latents=[torch.randn(latent, generator=generator, **bf16)],
        start_tokens=torch.randn((1, 3072), generator=generator, **bf16),
        end_tokens=torch.randn((1, 3072), generator=generator, **bf16),
    )


@torch.no_grad()
def seconds_per_forward(model, inputs: dict, repeats: int) -> float:
    model(**inputs)  # warm-up
    synchronize(inputs["timestep"].device.type)
    start = time.perf_counter()
    for _ in range(repeats):
        model(**inputs)
    synchronize(inputs["timestep"].device.type)
    return (time.perf_counter() - start) / repeats


def scaling(state, device: str, args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    model = VinoTransformer3DModel(num_layers=args.layers, num_single_layers=2 * args.layers).to(device, torch.bfloat16)
    inputs = stream_inputs(args.frames, args.height, args.width, device)
    tokens = 2 * inputs["hidden_states"][0, 0].numel() // 4 + 2 + TEXT_TOKENS
    one = seconds_per_forward(model, inputs, args.repeats) if state.is_main_process else 0.0
    state.wait_for_everyone()
    for kind in kinds(device):
        torch.manual_seed(0)
        split = VinoTransformer3DModel(num_layers=args.layers, num_single_layers=2 * args.layers)
        split = split.to(device, torch.bfloat16)
        enable_context_parallel(split, kind)
        several = seconds_per_forward(split, inputs, args.repeats)
        if state.is_main_process:
            print(
                f"{kind}: {tokens} tokens, {args.layers}+{2 * args.layers} blocks: one process {one:.3f} s/forward, "
                f"{state.num_processes} processes {several:.3f} s/forward, speed-up {one / several:.2f}x "
                f"(n={args.repeats})"
            )
        del split
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=85)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=848)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    state = process_state()
    device = str(state.device)
    name = torch.cuda.get_device_name(state.device) if device.startswith("cuda") else "CPU"
    print(f"rank {state.process_index} of {state.num_processes} on {name}")
    correctness(state, device)
    scaling(state, device, args)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
