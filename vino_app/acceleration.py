"""Speed options of the MMDiT, all through diffusers: step caching (cache hooks), the attention backend (the
attention dispatcher) and regional compilation (`compile_repeated_blocks`).

Step caching: `off` runs every block at every step; `fast` and `faster` are diffusers' TaylorSeer (lite mode): after
the first steps, the MMDiT's blocks are computed every `interval`-th step only (per CFG branch) and their outputs
extrapolated in between by a first-order Taylor expansion in the step. TaylorSeer served VINO better than First Block
Cache on the demo model (faster and closer to `off` at once); the intervals are measured there
(`python -m benchmarks.speed`, docs/benchmarks.md).

torch and diffusers are imported on first use, so the studio's page can name the modes without loading them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from .errors import VinoInputError

if TYPE_CHECKING:
    import torch
    from diffusers.hooks import TaylorSeerCacheConfig

CACHE_MODES = ("off", "fast", "faster")
# TaylorSeer: blocks computed every this many steps (see docs/benchmarks.md), none cached in the first few steps.
CACHE_INTERVALS = {"fast": 7, "faster": 10}
CACHE_WARMUP_STEPS = 3
# Backends whose kernels run on a CPU; the others need a CUDA GPU (flash-attn, SageAttention, xformers, hub kernels).
CPU_ATTENTION_BACKENDS = ("native", "flex")
DEFAULT_ATTENTION = "native"
# Backends that take the key mask of CFG branches padded to one text length (tested); the others refuse any mask,
# so their branches of different lengths run one by one.
MASKED_ATTENTION_BACKENDS = ("native",)


def check_cache_mode(mode: str) -> str:
    """`mode` if it is a step-cache mode; raises naming the allowed ones."""
    if mode not in CACHE_MODES:
        raise VinoInputError(f"cache: unknown mode '{mode}'; choose one of {', '.join(CACHE_MODES)}")
    return mode


def cache_config(mode: str) -> TaylorSeerCacheConfig | None:
    """The diffusers cache config of a step-cache mode (None for 'off')."""
    check_cache_mode(mode)
    if mode == "off":
        return None
    import torch
    from diffusers.hooks import TaylorSeerCacheConfig

    return TaylorSeerCacheConfig(
        cache_interval=CACHE_INTERVALS[mode],
        disable_cache_before_step=CACHE_WARMUP_STEPS,
        use_lite_mode=True,
        taylor_factors_dtype=torch.float32,
    )


@lru_cache(maxsize=1)
def attention_backends() -> tuple[str, ...]:
    """Public names of diffusers' attention dispatcher (its underscored names are internal variants)."""
    from diffusers.models.attention_dispatch import AttentionBackendName

    return tuple(b.value for b in AttentionBackendName if not b.value.startswith("_"))


def __getattr__(name: str):
    if name == "ATTENTION_BACKENDS":  # a constant to its readers, computed when first read
        return attention_backends()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_attention_backend(backend: str, device: torch.device | str) -> str:
    """`backend` if it is a dispatcher name that can run on `device`; raises one line naming the backend and why
    not (unknown, needs CUDA). A missing package is refused by `VinoPipeline.set_attention_backend`."""
    if backend not in attention_backends():
        choices = ", ".join(attention_backends())
        raise VinoInputError(f"attention: unknown backend '{backend}'; choose one of {choices}")
    import torch

    if torch.device(device).type != "cuda" and backend not in CPU_ATTENTION_BACKENDS:
        raise VinoInputError(f"attention backend '{backend}' needs a CUDA GPU; on the CPU use 'native'")
    return backend
