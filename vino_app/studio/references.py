"""Numbered reference slots: uploads normalised to PNG, and instructions rewritten when slots move."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Sequence

from ..media import load_image, probe_video
from ..prompt import find_references
from .limits import MAX_IMAGES

REMOVED_IMAGE = "the removed image"


def normalise_image(path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Read an uploaded image (EXIF orientation, alpha, 16-bit, CMYK, first frame of an animation) and save it as an
    RGB PNG in `out_dir`. Raises `MediaError` naming the file when it cannot be read."""
    image = load_image(path)
    out = Path(out_dir) / f"ref-{uuid.uuid4().hex[:12]}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


def describe_video(path: str | os.PathLike) -> str:
    """One line about a reference video (frames, fps, size, duration) from its container, nothing decoded; raises
    `MediaError` when it has no video stream or exceeds the caps of `media.probe_video`."""
    info = probe_video(path)
    return (
        f"Video 1: {info.num_frames} frames, {info.fps:g} fps, {info.width}x{info.height}, "
        f"{info.seconds:.1f} s ({info.codec})"
    )


def renumber_images(prompt: str, order: Sequence[int]) -> str:
    """Rewrite "Image k" names after the slots changed: `order[j]` is the old number (1-based) of the picture now in
    slot j + 1. Each name keeps pointing at the same picture (written canonically, "Image k"); names of pictures no
    longer attached become "the removed image". Video names are left alone."""
    new_number = {old: new for new, old in enumerate(order, start=1)}
    pieces, last = [], 0
    for mention in find_references(prompt):
        if mention.kind != "image":
            continue
        start, end = mention.span
        number = new_number.get(mention.number)
        pieces += [prompt[last:start], REMOVED_IMAGE if number is None else f"Image {number}"]
        last = end
    return "".join(pieces) + prompt[last:]


def move(items: Sequence, index: int, offset: int) -> tuple[list, list[int]]:
    """Move item `index` (0-based) by `offset` places; returns the new list and the old 1-based numbers in new order."""
    order = list(range(1, len(items) + 1))
    target = min(max(index + offset, 0), len(items) - 1)
    order.insert(target, order.pop(index))
    return [items[i - 1] for i in order], order


def remove(items: Sequence, index: int) -> tuple[list, list[int]]:
    """Remove item `index` (0-based); returns the new list and the old 1-based numbers in new order."""
    order = [i for i in range(1, len(items) + 1) if i != index + 1]
    return [items[i - 1] for i in order], order
