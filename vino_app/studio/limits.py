"""The server-side limits of every value a caller can send: the sliders' ranges, prompt length, reference counts and
the caps on reference videos. One table, read by the page's controls and by the checks, so both always agree."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

from ..errors import VinoInputError
from ..sizes import MAX_AREA, MAX_FRAMES, MIN_AREA

MAX_SEED = 2**31 - 1
MAX_IMAGES = 8
MAX_VIDEOS = 1
# The VLM reads the instruction inside a chat turn with up to 8 images and 8 video frames (a few thousand tokens);
# 2,000 characters (at most ~2,000 tokens) keeps the whole turn well inside Qwen3-VL's context and a request short.
MAX_PROMPT_CHARS = 2000
MAX_CFG_GRID_CELLS = 16


@dataclass(frozen=True)
class Range:
    """The allowed values of one control: `low`..`high` inclusive; `step` is the slider's step (display only);
    `integer`: whole numbers only."""

    label: str
    low: float
    high: float
    step: float
    integer: bool = False

    def check(self, value: Any) -> int | float:
        """`value` as int/float when it is a finite number in range (a whole one for integer controls); else a
        `VinoInputError` naming the control and its range."""
        kind = "a whole number" if self.integer else "a number"
        allowed = f"{kind} from {_number(self.low)} to {_number(self.high)}"
        if isinstance(value, bool) or not isinstance(value, Real):
            raise VinoInputError(f"{self.label} must be {allowed}; got {_show(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            raise VinoInputError(f"{self.label} must be {allowed}; got {_show(value)}") from None
        whole = number.is_integer() or not self.integer
        if not math.isfinite(number) or not self.low <= number <= self.high or not whole:
            raise VinoInputError(f"{self.label} must be {allowed}; got {_show(value)}")
        return int(number) if self.integer else number


CONTROLS = {
    "num_frames": Range("frames", 1, MAX_FRAMES, 4, integer=True),
    "side": Range("area side (px)", int(math.sqrt(MIN_AREA)), int(math.sqrt(MAX_AREA)), 16, integer=True),
    "guidance_scale": Range("text CFG", 1, 15, 0.5),
    "image_guidance_scale": Range("image CFG", 1, 5, 0.1),
    "num_inference_steps": Range("steps", 1, 100, 1, integer=True),
    "shift": Range("shift", 1, 15, 0.5),
    "seed": Range("seed", 0, MAX_SEED, 1, integer=True),
}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _show(value: Any) -> str:
    """A short, safe rendering of a refused value (long ones cut)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_text(value: Any, label: str, limit: int = MAX_PROMPT_CHARS) -> str:
    """`value` as a string of at most `limit` characters (None is the empty string)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise VinoInputError(f"{label} must be text; got {type(value).__name__}")
    if len(value) > limit:
        raise VinoInputError(f"{label} is {len(value):,} characters long; at most {limit:,} are allowed")
    return value


def check_choice(value: Any, label: str, choices: Any) -> str:
    """`value` when it is one of `choices` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise VinoInputError(f"{label} must be one of {', '.join(choices)}; got {_show(value)}")
    return value


def check_counts(num_images: int, num_videos: int) -> None:
    """At most `MAX_IMAGES` images and `MAX_VIDEOS` video per request."""
    if num_images > MAX_IMAGES:
        raise VinoInputError(f"images: at most {MAX_IMAGES} per request; got {num_images}")
    if num_videos > MAX_VIDEOS:
        raise VinoInputError(f"videos: at most {MAX_VIDEOS} per request; got {num_videos}")


def parse_values(text: Any, name: str) -> list[float]:
    """'3, 5, 7' -> [3.0, 5.0, 7.0], each checked against control `name` (a CFG grid's axis)."""
    allowed = CONTROLS[name]
    text = check_text(text, f"{allowed.label} values", limit=200)
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise VinoInputError(
            f"{allowed.label} values must be numbers separated by commas, e.g. '3, 5, 7'; got {_show(text)}"
        ) from None
    if not values:
        raise VinoInputError(f"give one or more {allowed.label} values separated by commas, e.g. '3, 5, 7'")
    return [allowed.check(v) for v in values]
