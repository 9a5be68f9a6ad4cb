"""Classifier-free guidance as the release runs it: which branches a request needs and how their velocities mix.

Text CFG (scale s_t) adds a negative-prompt branch; image CFG (s_i > 1, with reference images) adds a branch that
sees no reference images (only the base image when editing one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class Branch:
    """One CFG branch: its text, which attached images its prompt shows (a suffix of them), the video or not."""

    text: str
    image_indices: list[int]
    has_video: bool


def cfg_branches(
    prompt: str,
    negative: str,
    num_images: int,
    has_video: bool,
    base_image: bool,
    text_scale: float,
    image_scale: float,
) -> list[Branch]:
    """Positive; negative with the same references (when any guidance applies); negative without reference
    images (image CFG > 1 with images attached), which keeps only the base image in base-image editing."""
    everything = list(range(num_images))
    branches = [Branch(prompt, everything, has_video)]
    if text_scale != 1.0 or image_scale > 1.0:
        branches.append(Branch(negative, everything, has_video))
    if image_scale > 1.0 and num_images:
        branches.append(Branch(negative, everything[-1:] if base_image else [], has_video))
    return branches


def combine_guidance(velocities: list[torch.Tensor], text_scale: float, image_scale: float) -> torch.Tensor:
    """v_c; v_u + s_t (v_c - v_u); or v_ui + s_i (v_u - v_ui) + s_t (v_c - v_u), by the number of branches."""
    if len(velocities) == 1:
        return velocities[0]
    v_c, v_u = velocities[0], velocities[1]
    if len(velocities) == 2:
        return v_u + text_scale * (v_c - v_u)
    v_ui = velocities[2]
    return v_ui + image_scale * (v_u - v_ui) + text_scale * (v_c - v_u)
