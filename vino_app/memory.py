"""Named memory profiles: which parts are quantized, how they are offloaded, in which dtype they run."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import VinoInputError


@dataclass(frozen=True)
class MemoryProfile:
    """How the three models are placed.

    quantize_transformer / quantize_vlm: None, "nf4" (bitsandbytes 4-bit) or "int8" (bitsandbytes 8-bit).
    offload: None (all on the GPU), "model" (each model moves to the GPU while it runs: diffusers' model CPU
    offload) or "group" (diffusers' group offloading, the smallest footprint). Peaks: `python -m vino_app plan`.
    load_on_cpu: build every model on the CPU, then move the pipeline with `.to(device)` (what Hugging Face
    ZeroGPU expects at start-up: its patched torch records the move and replays it on the GPU it lends per call).
    storage_dtype: the MMDiT's weights stored in this dtype and upcast to `dtype` layer by layer as each runs
    (diffusers' layerwise casting); None stores them in `dtype`.
    """

    name: str
    description: str
    dtype: torch.dtype = torch.bfloat16
    quantize_transformer: str | None = None
    quantize_vlm: str | None = None
    offload: str | None = None
    vae_tiling: bool = False
    load_on_cpu: bool = False
    storage_dtype: torch.dtype | None = None


PROFILES: dict[str, MemoryProfile] = {
    p.name: p
    for p in (
        MemoryProfile("full", "bf16, everything on the GPU, VAE tiling (about 37 GiB at 480x848x85)", vae_tiling=True),
        MemoryProfile(
            "fp8",
            "FP8 (e4m3) MMDiT storage, bf16 compute (layerwise casting), bf16 VLM, all on the GPU, VAE tiling "
            "(about 25 GiB at 480x848x85)",
            vae_tiling=True,
            storage_dtype=torch.float8_e4m3fn,
        ),
        MemoryProfile(
            "24gb",
            "NF4 MMDiT, bf16 VLM, model CPU offload, VAE tiling (about 10 GiB)",
            quantize_transformer="nf4",
            offload="model",
            vae_tiling=True,
        ),
        MemoryProfile(
            "16gb",
            "NF4 MMDiT and VLM, model CPU offload, VAE tiling (about 10 GiB)",
            quantize_transformer="nf4",
            quantize_vlm="nf4",
            offload="model",
            vae_tiling=True,
        ),
        MemoryProfile(
            "8gb",
            "bf16, group offload to the CPU (MMDiT by block, VLM and VAE by layer), VAE tiling (about 5 GiB)",
            offload="group",
            vae_tiling=True,
        ),
        MemoryProfile("cpu", "float32 on the CPU, no quantization", dtype=torch.float32, vae_tiling=True),
        MemoryProfile(
            "zerogpu",
            "bf16, built on the CPU and moved with .to('cuda'): Hugging Face ZeroGPU (no hooks, no quantization)",
            load_on_cpu=True,
        ),
    )
}


def get_profile(name: str) -> MemoryProfile:
    """The profile called `name`; raises naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise VinoInputError(f"unknown memory profile '{name}'; choose one of {', '.join(PROFILES)}") from None


def default_profile_name() -> str:
    """'full' on a GPU with 40 GB or more, '24gb' / '16gb' / '8gb' below that, 'cpu' without CUDA."""
    if not torch.cuda.is_available():
        return "cpu"
    total_gb = torch.cuda.get_device_properties(0).total_memory / 2**30
    for name, need in (("full", 40), ("24gb", 22), ("16gb", 14)):
        if total_gb >= need:
            return name
    return "8gb"


def bitsandbytes_kwargs(mode: str | None, compute_dtype: torch.dtype) -> dict | None:
    """Keyword arguments of a bitsandbytes quantization config (diffusers' and transformers' share them)."""
    if mode is None:
        return None
    if mode == "nf4":
        return {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": compute_dtype}
    if mode == "int8":
        return {"load_in_8bit": True}
    raise VinoInputError(f"unknown quantization '{mode}'; use 'nf4' or 'int8'")
