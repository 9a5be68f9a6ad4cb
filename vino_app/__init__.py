"""VINO Studio: load the released VINO weights and run every VINO task (engine; no UI imports here)."""

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

__all__ = [
    "PROFILES",
    "CheckpointError",
    "FrameCountError",
    "GenerationCancelled",
    "MediaError",
    "MemoryProfile",
    "ReferenceNameError",
    "SizeError",
    "TaskSpec",
    "VinoError",
    "VinoInputError",
    "VinoPipeline",
    "VinoPipelineOutput",
    "check_references",
    "get_profile",
    "read_task_file",
]
