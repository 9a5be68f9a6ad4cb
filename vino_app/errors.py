"""Typed errors for input a person can fix. Each message names the input and says how to fix it."""


class VinoError(Exception):
    """Base class of every error VINO Studio raises on purpose."""


class VinoInputError(VinoError, ValueError):
    """A request that cannot run as given (bad media, sizes, prompt or settings)."""


class ReferenceNameError(VinoInputError):
    """The instruction names a reference that is not attached, or spells it in a way the model never saw."""


class FrameCountError(VinoInputError):
    """The number of frames is not of the form 4k+1 or lies outside the supported range."""


class SizeError(VinoInputError):
    """The requested area, height or width is too small, too large or not a multiple of 16."""


class MediaError(VinoInputError):
    """An image or video file cannot be read (missing, empty, truncated, not an image, no frames)."""


class CheckpointError(VinoError):
    """A checkpoint file is missing, unreadable or does not match the model configuration."""


class GenerationCancelled(VinoError):
    """Raised by the sampler when the per-step callback asks to stop."""
