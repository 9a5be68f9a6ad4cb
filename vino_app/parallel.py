"""Several processes (under `torchrun` or `accelerate launch`): share out a task file's items, or split one
request's MMDiT sequence with diffusers' context parallelism.

accelerate's `PartialState` reads the launcher's environment and starts torch.distributed (NCCL on GPUs, gloo on
CPU); one process alone runs as before.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator
from unittest import mock

import torch
import torch.distributed as dist
from accelerate import PartialState
from diffusers import ContextParallelConfig, ParallelConfig

from .errors import VinoInputError

PARALLEL_KINDS = ("ulysses", "ring")
# Ring attention merges partial results by their log-sum-exp; these CUDA backends return it (diffusers' "native"
# SDPA does not). Our MMDiT passes no attention mask, which PyTorch's own flash kernel needs.
RING_BACKENDS = ("_native_flash", "_native_cudnn", "flash", "flash_hub", "sage", "sage_hub", "_flash_3_hub")
RING_DEFAULT_BACKEND = "_native_flash"


def process_state() -> PartialState:
    """The launcher's processes (one when not launched), on "cpu:gloo" (no GPU) or "cpu:gloo,cuda:nccl": diffusers
    exchanges the sizes of uneven sequence parts on the CPU when the backend names it (as its distributed-inference
    guide advises), and otherwise sends them to torch's default accelerator, CUDA on CUDA builds even without a GPU."""
    cpu = not torch.cuda.is_available()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("cpu:gloo" if cpu else "cpu:gloo,cuda:nccl")
    return PartialState(cpu=cpu)


def context_parallel_config(kind: str, degree: int) -> ContextParallelConfig:
    """Ulysses (all-to-all over heads) or ring (key/value blocks passed around) of `degree` processes; any
    sequence length (our stream is references + boundary tokens + target + text, rarely a multiple of `degree`)."""
    if kind == "ulysses":
        return ContextParallelConfig(ulysses_degree=degree, ulysses_anything=True)
    return ContextParallelConfig(ring_degree=degree, ring_anything=True)


@contextmanager
def _without_accelerator() -> Iterator[None]:
    """diffusers places rank r on device `r % torch.accelerator.device_count()`, which divides by zero on a host
    without an accelerator; there the processes run on the CPU (device index 0 of 1)."""
    if torch.accelerator.device_count():
        yield
        return
    with mock.patch.object(torch.accelerator, "device_count", return_value=1):
        yield


def enable_context_parallel(transformer, kind: str, degree: int | None = None) -> int:
    """Split `transformer`'s sequence across `degree` processes (default: all of them) with
    `enable_parallelism`; returns the degree. Every process must run the same request."""
    if kind not in PARALLEL_KINDS:
        raise VinoInputError(f"parallel must be one of {', '.join(PARALLEL_KINDS)}, got '{kind}'")
    processes = process_state().num_processes
    degree = processes if degree is None else degree
    if processes < 2:
        raise VinoInputError(
            "context parallelism needs several processes: start with "
            "'torchrun --nproc_per_node N -m vino_app generate ...' (this is one process)"
        )
    if degree != processes:
        raise VinoInputError(f"degree must equal the number of processes ({processes}), got {degree}")
    if kind == "ring":
        if transformer.device.type != "cuda":
            raise VinoInputError(
                "parallel 'ring' needs a CUDA attention backend that returns the log-sum-exp "
                f"({', '.join(RING_BACKENDS)}); on CPU use 'ulysses'"
            )
        # the MMDiT blocks' processors go through diffusers' dispatcher (the token refiner's do not)
        processors = transformer.attn_processors.values()
        backends = {p._attention_backend for p in processors if hasattr(p, "_attention_backend")}
        if not backends <= set(RING_BACKENDS):
            transformer.set_attention_backend(RING_DEFAULT_BACKEND)
    apply_context_parallel(transformer, context_parallel_config(kind, degree))
    return degree


def check_cpu_split(tokens: int, config: ParallelConfig) -> None:
    """On the CPU (gloo, whose all-gather takes equal parts only) the latent stream must split evenly."""
    cp = config.context_parallel_config
    degree = cp.ring_degree * cp.ulysses_degree
    if tokens % degree:
        raise VinoInputError(
            f"on CPU, context parallelism needs a latent stream that splits evenly: {tokens} tokens over {degree} "
            "processes; change the size or frames, or use one process"
        )


def apply_context_parallel(transformer, config: ContextParallelConfig) -> None:
    """diffusers' `enable_parallelism` with `config` and the model's `_cp_plan`, also on a host without an
    accelerator."""
    with _without_accelerator():
        transformer.enable_parallelism(config=config)
