"""The interleaved VLM prompt of the release and the checks on how an instruction names its references."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ReferenceNameError

SYSTEM_PROMPT = "You are a helpful assistant aimed at generating an output video caption."

NEGATIVE_PROMPT_IMAGE = (
    "low quality, blurry, low resolution, jpeg artifacts, noisy, bad anatomy, bad proportions, deformed face, "
    "extra limbs, extra fingers, fused fingers, malformed hands, unnatural pose, distorted eyes, poor lighting, "
    "overexposed, underexposed, bad composition, cropped, duplicate, ghosting, motion blur, watermark, logo, text, nsfw"
)
NEGATIVE_PROMPT_VIDEO = (
    "low quality, blurry, flickering, temporal inconsistency, ghosting, motion blur, jitter, unstable structure, "
    "distorted anatomy, extra limbs, extra fingers, malformed hands, warped face, inconsistent identity, "
    "poor lighting, "
    "overexposed, underexposed, bad composition, cropped, duplicate frames, color flicker, watermark, logo, text, nsfw"
)

VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"
IMAGE_PAD, VIDEO_PAD = "<|image_pad|>", "<|video_pad|>"

REWRITE_SYSTEM_PROMPT = (
    "You rewrite short requests for an image and video generator into one detailed caption. Describe the subject, "
    "its appearance, the setting, lighting, camera and, for videos, the motion. Keep every reference to "
    "'Image N' or 'Video 1'. Answer with the caption only."
)


def default_negative_prompt(num_frames: int) -> str:
    """The release's negative prompt for an image (1 frame) or a video output."""
    return NEGATIVE_PROMPT_IMAGE if num_frames == 1 else NEGATIVE_PROMPT_VIDEO


def chat_text(text: str, num_images: int, has_video: bool, system: str = SYSTEM_PROMPT) -> str:
    """The VLM chat text: numbered visual placeholders (images, then the video) before the user's text."""
    visuals = "".join(f"Image {i}: {VISION_START}{IMAGE_PAD}{VISION_END}" for i in range(1, num_images + 1))
    if has_video:
        visuals += f"Video 1: {VISION_START}{VIDEO_PAD}{VISION_END}"
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        f"<|im_start|>user\n{visuals}{text}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


_REFERENCE = re.compile(r"\b(image|video)([ _]*)(\d+)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ReferenceMention:
    """One "Image k" / "Video k" in an instruction: `kind` is 'image' or 'video', `span` its characters."""

    kind: str
    number: int
    text: str
    span: tuple[int, int]

    @property
    def canonical(self) -> str:
        return f"{self.kind.capitalize()} {self.number}"


def find_references(text: str) -> list[ReferenceMention]:
    """Every "Image k" / "Video k" in `text`, also spelled "Image_k", "image k" or "IMAGE3"."""
    return [
        ReferenceMention(m.group(1).lower(), int(m.group(3)), m.group(0), m.span()) for m in _REFERENCE.finditer(text)
    ]


@dataclass(frozen=True)
class ReferenceReport:
    """What `check_references` found: hard `errors` (the request cannot run) and `warnings` (it can)."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]


def check_references(text: str, num_images: int, num_videos: int) -> ReferenceReport:
    """Compare the references an instruction names with the ones attached.

    Errors: a name with no attachment ("Image 3" with two images), more than one video. Warnings: spellings
    other than "Image k" (the model saw "Image k" in its prompt), attachments never named.
    """
    errors: list[str] = []
    warnings: list[str] = []
    if num_videos > 1:
        errors.append(f"{num_videos} videos are attached but VINO takes at most one; remove all but Video 1")
    mentions = find_references(text)
    for m in mentions:
        available = num_images if m.kind == "image" else min(num_videos, 1)
        if not 1 <= m.number <= available:
            have = f"{available} {m.kind}{'s' if available != 1 else ''} attached"
            errors.append(
                f'the instruction names "{m.text}" but there {"is" if available == 1 else "are"} {have}; '
                f'attach {m.canonical} or change the name'
            )
        elif m.text != m.canonical:
            warnings.append(f'"{m.text}" is read as "{m.canonical}"; write "{m.canonical}" as the model expects')
    named = {(m.kind, m.number) for m in mentions}
    if mentions:
        for i in range(1, num_images + 1):
            if ("image", i) not in named:
                warnings.append(f"Image {i} is attached but the instruction never names it")
        if num_videos and ("video", 1) not in named:
            warnings.append("Video 1 is attached but the instruction never names it")
    return ReferenceReport(tuple(errors), tuple(warnings))


def validate_references(text: str, num_images: int, num_videos: int) -> ReferenceReport:
    """`check_references`, raising `ReferenceNameError` when there are errors."""
    report = check_references(text, num_images, num_videos)
    if report.errors:
        raise ReferenceNameError("; ".join(report.errors))
    return report

