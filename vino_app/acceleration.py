"""Speed options of the MMDiT, all through diffusers: step caching (cache hooks), the attention backend (the
attention dispatcher) and regional compilation (`compile_repeated_blocks`).

Step caching: `off` runs every block at every step; `fast` and `faster` are diffusers' First Block Cache at two
thresholds: a step whose first block's residual changed by less than the threshold (relative mean absolute
change against the last computed step, per CFG branch) reuses the last computed residual of the remaining blocks.
The thresholds are measured on the demo model (`python -m benchmarks.speed`, docs/benchmarks.md).
"""

from __future__ import annotations

import torch
from diffusers.hooks import FirstBlockCacheConfig
from diffusers.models.attention_dispatch import AttentionBackendName

from .errors import VinoInputError

CACHE_MODES = ("off", "fast", "faster")
# First Block Cache thresholds (relative change of the first block's residual): see docs/benchmarks.md.
CACHE_THRESHOLDS = {"fast": 0.12, "faster": 0.25}
# Public names of diffusers' attention dispatcher (its underscored names are internal variants).
ATTENTION_BACKENDS = tuple(b.value for b in AttentionBackendName if not b.value.startswith("_"))
# Backends whose kernels run on a CPU; the others need a CUDA GPU (flash-attn, SageAttention, xformers, hub kernels).
CPU_ATTENTION_BACKENDS = ("native", "flex")


def check_cache_mode(mode: str) -> str:
    """`mode` if it is a step-cache mode; raises naming the allowed ones."""
    if mode not in CACHE_MODES:
        raise VinoInputError(f"cache: unknown mode '{mode}'; choose one of {', '.join(CACHE_MODES)}")
    return mode


def cache_config(mode: str) -> FirstBlockCacheConfig | None:
    """The diffusers cache config of a step-cache mode (None for 'off')."""
    check_cache_mode(mode)
    return None if mode == "off" else FirstBlockCacheConfig(threshold=CACHE_THRESHOLDS[mode])


def check_attention_backend(backend: str, device: torch.device | str) -> str:
    """`backend` if it is a dispatcher name that can run on `device`; raises one line naming the backend and why
    not (unknown, needs CUDA). A missing package is refused by `VinoPipeline.set_attention_backend`."""
    if backend not in ATTENTION_BACKENDS:
        raise VinoInputError(f"attention: unknown backend '{backend}'; choose one of {', '.join(ATTENTION_BACKENDS)}")
    if torch.device(device).type != "cuda" and backend not in CPU_ATTENTION_BACKENDS:
        raise VinoInputError(f"attention backend '{backend}' needs a CUDA GPU; on the CPU use 'native'")
    return backend
