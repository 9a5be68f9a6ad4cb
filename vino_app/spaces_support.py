"""Hugging Face ZeroGPU for the studio's GPU endpoints (generate, CFG grid, rewrite).

Each is wrapped with `spaces.GPU(duration=...)`. Outside ZeroGPU that decorator returns the function unchanged; on
a ZeroGPU Space each call runs in a forked worker that holds a GPU for at most `duration` seconds, its arguments,
results and `gr.Error`s pickled across (any other exception reaches the visitor by class name only, so the
endpoints raise `gr.Error`). The duration comes from the request's cost estimate; a request whose duration passes
the platform's cap is refused before a GPU is asked for, with a cheaper setting proposed.
"""

from __future__ import annotations

import html
import math
import os
import warnings
from dataclasses import replace
from typing import Callable

import gradio as gr
import spaces

from .errors import VinoInputError
from .studio import CostEstimate, Job
from .studio.studio import cheaper_settings

ZEROGPU_MAX_SECONDS = 300  # the longest call ZeroGPU grants (its maintainers' figure; the package does not hold it)
MAX_SECONDS_ENV = "VINO_ZEROGPU_MAX_SECONDS"
WORKER_SECONDS = 30  # a worker's first call: the weights' move to the GPU, then the VLM and VAE passes
SAFETY = 1.5  # durations are the estimated time x this, plus WORKER_SECONDS
REWRITE_SECONDS = 60  # the VLM writing up to 256 tokens


def max_duration() -> float:
    """The cap in the decorator's seconds: `VINO_ZEROGPU_MAX_SECONDS` (default 300) over the duration factor that
    `spaces` applies for the lent GPU model."""
    raw = os.environ.get(MAX_SECONDS_ENV, str(ZEROGPU_MAX_SECONDS))
    try:
        cap = float(raw)
    except ValueError:
        cap = math.nan
    if not cap > WORKER_SECONDS:
        raise VinoInputError(f"{MAX_SECONDS_ENV} must be a number of seconds above {WORKER_SECONDS}; got '{raw}'")
    from spaces.zero.config import get_config

    with warnings.catch_warnings():  # off ZeroGPU it warns that it cannot read the NVIDIA driver's files
        warnings.simplefilter("ignore")
        return cap / get_config()["duration_factor"]


def on_gpu(fn: Callable, duration: Callable[..., float]) -> Callable:
    """`fn` under `spaces.GPU(duration=duration)`; the duration function stays reachable as `gpu_duration`."""
    wrapped = spaces.GPU(duration=duration)(fn)
    wrapped.gpu_duration = duration
    return wrapped


def gpu_seconds(estimated_seconds: float) -> float:
    """The duration asked for a call whose estimate is `estimated_seconds`."""
    return WORKER_SECONDS + SAFETY * estimated_seconds


class GpuTime:
    """Durations of the UI's GPU endpoints, taking the endpoints' own arguments: `job(prompt, gallery, video,
    *controls)` builds their `Job`, `estimate(job)` costs it (`Studio.estimate`), `scales(text, name)` parses a CFG
    grid's values."""

    def __init__(
        self,
        job: Callable[..., Job],
        estimate: Callable[[Job], CostEstimate],
        scales: Callable[[str, str], list[float]],
    ) -> None:
        self.job = job
        self.estimate = estimate
        self.scales = scales

    def _seconds(self, job: Job, cells: int = 1) -> float:
        return gpu_seconds(cells * self.estimate(job).seconds)

    def _checked(self, job: Job, cells: int, what: str) -> float:
        seconds, cap = self._seconds(job, cells), max_duration()
        if seconds <= cap:
            return seconds
        raise gr.Error(
            f"{what} needs about {seconds:.0f} s of GPU time and a ZeroGPU call gets at most {cap:.0f} s. "
            f"{html.escape(self._proposal(job, cells, cap))}",
            print_exception=False,
        )

    def _proposal(self, job: Job, cells: int, cap: float) -> str:
        """Fewer frames or a smaller area (the studio's cheaper settings, in turn), or fewer steps, that fit."""
        per_step = (self._seconds(job, cells) - WORKER_SECONDS) / job.settings.num_inference_steps
        steps = int((cap - WORKER_SECONDS) / per_step)
        offers = [f"{steps} steps"] if steps >= 1 else []
        settings = job.settings
        while (settings := cheaper_settings(settings)) is not None:
            if self._seconds(replace(job, settings=settings), cells) <= cap:
                size = f"{settings.num_frames} frames" if settings.num_frames != job.settings.num_frames else ""
                area = f"area {settings.side}x{settings.side}" if settings.side != job.settings.side else ""
                offers.insert(0, " at ".join(p for p in (size, area) if p))
                break
        if cells > 1:
            offers.append("fewer CFG values")
        return f"Try {' or '.join(offers)}." if offers else "Run it on a GPU Space instead."

    def generate(self, prompt, gallery, video, *controls, **_) -> float:
        return self._checked(self.job(prompt, gallery, video, *controls), 1, "This request")

    def cfg_grid(self, text_values, image_values, prompt, gallery, video, *controls, **_) -> float:
        cells = len(self.scales(text_values, "text CFG")) * len(self.scales(image_values, "image CFG"))
        return self._checked(self.job(prompt, gallery, video, *controls), cells, f"This {cells}-cell grid")

    def rewrite(self, *_, **__) -> float:
        return min(REWRITE_SECONDS, max_duration())
