"""The studio layer between the engine and a UI: slots, presets, cost estimates, jobs with progress, CFG grids,
results with their settings. It calls only the engine's public API and never imports a UI toolkit."""

from .estimate import CostEstimate
from .models import ModelSource, resolve_model
from .settings import ASPECTS, TASK_CHOICES, GenerationSettings, Preset
from .studio import Job, OutOfMemory, Progress, Studio, StudioResult

__all__ = [
    "ASPECTS",
    "TASK_CHOICES",
    "CostEstimate",
    "GenerationSettings",
    "Job",
    "ModelSource",
    "OutOfMemory",
    "Preset",
    "Progress",
    "Studio",
    "StudioResult",
    "resolve_model",
]
