"""Which released presets fit one ZeroGPU call: the duration the studio would ask for each, from its cost estimate.

    python -m benchmarks.zerogpu_durations [--throughput 2e14] [--prompt-tokens 80]

The released MMDiT and VAE are built on the meta device from diffusers' HunyuanVideo defaults (the release's
configuration, docs/vino-reference.md), so nothing is downloaded; the VLM's size only changes the memory column's
weights, which this leaves out. Time is the estimate's (floating-point work / `--throughput`, the studio's guess for
a CUDA device before it has measured one), so the figures are as rough as that guess.
"""

from __future__ import annotations

import argparse

from accelerate import init_empty_weights
from diffusers import AutoencoderKLHunyuanVideo
from spaces.config import Config

from vino_app.memory import get_profile
from vino_app.spaces_support import gpu_seconds, max_duration
from vino_app.studio.estimate import DEFAULT_THROUGHPUT, GIB, ModelSize, estimate_cost
from vino_app.studio.models import PRESETS_DIR, REPO_ROOT
from vino_app.studio.settings import load_presets
from vino_app.transformer import VinoTransformer3DModel

QUERIES = 256  # the release's learnable query tokens
VLM_PIXELS_PER_TOKEN = (16 * 2) ** 2  # Qwen3-VL: 16-pixel patches, 2x2 merge


def released_size() -> ModelSize:
    with init_empty_weights():
        transformer, vae = VinoTransformer3DModel(), AutoencoderKLHunyuanVideo()
    config = transformer.config
    return ModelSize(
        transformer_params=sum(p.numel() for p in transformer.parameters()),
        vlm_params=0,
        vae_params=sum(p.numel() for p in vae.parameters()),
        num_layers=config.num_layers + config.num_single_layers,
        inner_dim=config.num_attention_heads * config.attention_head_dim,
        num_queries=QUERIES,
        spatial_compression=vae.config.spatial_compression_ratio * config.patch_size,
        temporal_compression=vae.config.temporal_compression_ratio * config.patch_size_t,
        vlm_pixels_per_token=VLM_PIXELS_PER_TOKEN,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--throughput", type=float, default=DEFAULT_THROUGHPUT["cuda"], help="FLOP/s of the GPU")
    parser.add_argument("--prompt-tokens", type=int, default=80, help="chat-text tokens without media")
    args = parser.parse_args(argv)
    size, profile, cap = released_size(), get_profile("zerogpu"), max_duration()
    memory = Config.zerogpu_cuda_total_memory / GIB  # the slice ZeroGPU lends
    print(
        f"MMDiT {size.transformer_params / 1e9:.2f} B parameters, VAE {size.vae_params / 1e6:.0f} M; "
        f"throughput {args.throughput:.1e} FLOP/s; cap {cap:.0f} s"
    )
    print("| preset | frames | side | steps | passes/step | estimate s | duration s | fits |")
    print("|---|---|---|---|---|---|---|---|")
    for preset in load_presets(PRESETS_DIR / "released", REPO_ROOT):
        s = preset.settings
        video_frames = s.num_frames if preset.video else None
        images = len(preset.images)
        cost = estimate_cost(s, args.prompt_tokens, images, video_frames, size, profile, memory, args.throughput)
        duration = gpu_seconds(cost.seconds)
        print(f"| {preset.name} | {s.num_frames} | {s.side} | {s.num_inference_steps} | {cost.passes_per_step} | "
              f"{cost.seconds:.0f} | {duration:.0f} | {'yes' if duration <= cap else 'no'} |")


if __name__ == "__main__":
    main()
