"""VINO Studio: load the released VINO weights and run every VINO task (engine; no UI imports here).

The names below are imported on first use (PEP 562), so `import vino_app.<module>` of a light module (errors,
tasks, prompt, the studio's settings) does not pull in diffusers and transformers: the studio serves its page
first and loads the model after.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "CheckpointError": "errors",
    "FrameCountError": "errors",
    "GenerationCancelled": "errors",
    "MediaError": "errors",
    "ReferenceNameError": "errors",
    "SizeError": "errors",
    "VinoError": "errors",
    "VinoInputError": "errors",
    "PROFILES": "memory",
    "MemoryProfile": "memory",
    "get_profile": "memory",
    "VinoPipeline": "pipeline",
    "VinoPipelineOutput": "pipeline",
    "check_references": "prompt",
    "TaskSpec": "tasks",
    "read_task_file": "tasks",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .errors import (
        CheckpointError,
        FrameCountError,
        GenerationCancelled,
        MediaError,
        ReferenceNameError,
        SizeError,
        VinoError,
        VinoInputError,
    )
    from .memory import PROFILES, MemoryProfile, get_profile
    from .pipeline import VinoPipeline, VinoPipelineOutput
    from .prompt import check_references
    from .tasks import TaskSpec, read_task_file


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vino_app' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
