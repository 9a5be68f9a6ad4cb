"""The world VAE on the CPU with PyTorch's stock Conv3d dispatch and with `use_onednn_conv3d`.

    python -m benchmarks.bench_cpu_convolution --threads 1 [--repeats 5]

Encodes a 9-frame 64x64 clip and decodes its latents (one request: batch 1) with `models/vino-world/hunyuan/vae`,
both ways; prints the median seconds, the speed-up and the largest difference between the two outputs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import AutoencoderKLHunyuanVideo

from vino_app.cpu_convolution import use_onednn_conv3d
from vino_app.world import demo_model_dir


def median_seconds(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clip = torch.rand(1, 3, 9, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    print(f"| Conv3d dispatch | encode s | decode s |  ({args.threads} threads, clip [1, 3, 9, 64, 64])\n|---|---|---|")
    outputs, seconds = {}, {}
    for name in ("stock", "onednn"):
        vae = AutoencoderKLHunyuanVideo.from_pretrained(demo_model_dir() / "hunyuan" / "vae").eval()
        if name == "onednn":
            use_onednn_conv3d(vae)
        latents = vae.encode(clip).latent_dist.mode()
        outputs[name] = (latents, vae.decode(latents).sample)
        seconds[name] = (
            median_seconds(lambda: vae.encode(clip), args.repeats),
            median_seconds(lambda: vae.decode(latents), args.repeats),
        )
        print(f"| {name} | {seconds[name][0]:.3f} | {seconds[name][1]:.3f} |")
    speedup = [s / o for s, o in zip(seconds["stock"], seconds["onednn"])]
    difference = [(a - b).abs().max().item() for a, b in zip(outputs["stock"], outputs["onednn"])]
    print(f"speed-up: encode {speedup[0]:.1f}x, decode {speedup[1]:.1f}x; largest difference: "
          f"latents {difference[0]:.1e}, pixels {difference[1]:.1e}")


if __name__ == "__main__":
    main()
