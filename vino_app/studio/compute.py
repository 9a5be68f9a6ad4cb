"""One thread for the process's model work. On a CPU every thread that runs torch operators gets an OpenMP team of
its own; with more teams than cores, OpenMP stops spin-waiting and each small operator pays a wake-up, so the demo
model ran 2x slower in a fresh thread per job than in one thread (`benchmarks/studio_overhead.py`). Loading,
calibration, jobs and rewrites of a `Studio` all run here."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

THREAD_PREFIX = "vino-compute"
T = TypeVar("T")
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_PREFIX)


def on_compute_thread() -> bool:
    return threading.current_thread().name.startswith(THREAD_PREFIX)


def submit(fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future:
    """Queue `fn(*args, **kwargs)` on the compute thread."""
    return _EXECUTOR.submit(fn, *args, **kwargs)


def compute(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` run on the compute thread (directly when already there); its result or its error."""
    if on_compute_thread():
        return fn(*args, **kwargs)
    return submit(fn, *args, **kwargs).result()
