"""Output geometry rules of the release: 4k+1 frames, 16-multiple sizes, target area with aspect kept."""

from __future__ import annotations

import math

from .errors import FrameCountError, SizeError

SIZE_MULTIPLE = 16  # VAE 8x spatial compression times patch size 2
MAX_FRAMES = 89  # the release clamps to 1..89
MIN_AREA = 64 * 64
MAX_AREA = 1280 * 1280


def validate_num_frames(num_frames: int) -> int:
    """Return `num_frames` if it is 4k+1 within 1..MAX_FRAMES, else raise naming the nearest valid values."""
    if not isinstance(num_frames, int) or isinstance(num_frames, bool):
        raise FrameCountError(f"frames must be a whole number of the form 4k+1 (1, 5, 9, ...), got {num_frames!r}")
    if 1 <= num_frames <= MAX_FRAMES and (num_frames - 1) % 4 == 0:
        return num_frames
    clamped = min(max(num_frames, 1), MAX_FRAMES)
    below = ((clamped - 1) // 4) * 4 + 1
    above = min(below + 4, MAX_FRAMES) if below != clamped else below
    nearest = sorted({below, above})
    raise FrameCountError(
        f"frames must be 4k+1 between 1 and {MAX_FRAMES} (1 = an image), got {num_frames}; "
        f"nearest valid: {' or '.join(map(str, nearest))}"
    )


def validate_size(height: int, width: int) -> tuple[int, int]:
    """Check an explicit height x width in pixels: multiples of 16, area within MIN_AREA..MAX_AREA."""
    for name, value in (("height", height), ("width", width)):
        if value < SIZE_MULTIPLE or value % SIZE_MULTIPLE:
            fixed = max(SIZE_MULTIPLE, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE)
            raise SizeError(f"{name} must be a positive multiple of {SIZE_MULTIPLE}, got {value}; try {fixed}")
    validate_area(height * width)
    return height, width


def validate_area(area: int) -> int:
    """Check a target area H*W in pixels against the supported range."""
    if area < MIN_AREA:
        raise SizeError(
            f"area {area} px is too small: at least {MIN_AREA} px "
            f"(e.g. {int(math.sqrt(MIN_AREA))}x{int(math.sqrt(MIN_AREA))})"
        )
    if area > MAX_AREA:
        raise SizeError(
            f"area {area} px is too large: at most {MAX_AREA} px "
            f"(e.g. {int(math.sqrt(MAX_AREA))}x{int(math.sqrt(MAX_AREA))}); "
            "the model was trained at 640x640"
        )
    return area


def size_for_area(area: int, aspect: float) -> tuple[int, int]:
    """Height x width (multiples of 16) whose product is closest to `area` for `aspect` = width / height.

    Heights are the two 16-multiples around sqrt(area / aspect); for each, widths are the two 16-multiples
    around aspect * h. Ties in |h*w - area| go to the smallest aspect-ratio error (the release's rule).
    """
    h0 = math.sqrt(area / aspect)
    candidates = []
    for h in {SIZE_MULTIPLE * math.floor(h0 / SIZE_MULTIPLE), SIZE_MULTIPLE * math.ceil(h0 / SIZE_MULTIPLE)}:
        if h <= 0:
            continue
        for w in {
            SIZE_MULTIPLE * math.floor(aspect * h / SIZE_MULTIPLE),
            SIZE_MULTIPLE * math.ceil(aspect * h / SIZE_MULTIPLE),
        }:
            if w > 0:
                candidates.append((abs(h * w - area), abs(w / h - aspect), h, w))
    _, _, h, w = min(candidates)
    return h, w


def release_video_size(height: int, width: int, area: int) -> tuple[int, int]:
    """Size (rows, cols) the release scales a `height x width` reference video to for an `area` px request:
    round(sqrt(area / r)) x round(sqrt(area / r) * r), r = width / height (at least 16 each, so that the crop to
    16-multiples keeps a pixel)."""
    ratio = width / height
    rows = math.sqrt(area / ratio)
    return max(SIZE_MULTIPLE, round(rows)), max(SIZE_MULTIPLE, round(rows * ratio))


def video_frames_used(requested: int, available: int) -> int:
    """Number of reference-video frames used: the largest 4k+1 not above min(requested, available)."""
    return ((min(requested, available) - 1) // 4) * 4 + 1
