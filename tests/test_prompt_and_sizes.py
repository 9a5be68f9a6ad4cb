"""Prompt text, reference-name checks and the geometry rules."""

import pytest

from vino_app import FrameCountError, ReferenceNameError, SizeError
from vino_app.prompt import SYSTEM_PROMPT, chat_text, check_references, validate_references
from vino_app.sizes import size_for_area, validate_area, validate_num_frames, validate_size, video_frames_used


def test_chat_text_images_then_video():
    text = chat_text("put the hat from Image 2 on the man in Video 1", 2, True)
    assert text == (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
        "Image 1: <|vision_start|><|image_pad|><|vision_end|>"
        "Image 2: <|vision_start|><|image_pad|><|vision_end|>"
        "Video 1: <|vision_start|><|video_pad|><|vision_end|>"
        "put the hat from Image 2 on the man in Video 1<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("name", ["Image 3", "Image_3", "image 3", "IMAGE3"])
def test_missing_image_is_an_error(name):
    with pytest.raises(ReferenceNameError, match="2 images attached"):
        validate_references(f"put the hat from {name} on Image 1", 2, 0)


def test_second_video_is_an_error():
    report = check_references("Video 1", 0, 2)
    assert any("at most one" in e for e in report.errors)
    with pytest.raises(ReferenceNameError, match="Video 2"):
        validate_references("Make Video 2 red", 0, 1)


def test_spellings_and_unnamed_references_warn():
    report = check_references("put the hat from Image_2 on the man", 2, 1)
    assert not report.errors
    assert any('"Image_2" is read as "Image 2"' in w for w in report.warnings)
    assert any("Image 1 is attached" in w for w in report.warnings)
    assert any("Video 1 is attached" in w for w in report.warnings)
    assert check_references("Add sunglasses to the man", 1, 0) == check_references("", 1, 0)


@pytest.mark.parametrize("frames,nearest", [(6, "5 or 9"), (0, "1"), (100, "89"), (4, "1 or 5")])
def test_frames_must_be_4k_plus_1(frames, nearest):
    with pytest.raises(FrameCountError, match=f"nearest valid: {nearest}"):
        validate_num_frames(frames)
    assert validate_num_frames(85) == 85


def test_sizes():
    with pytest.raises(SizeError, match="too small"):
        validate_area(32 * 32)
    with pytest.raises(SizeError, match="too large"):
        validate_area(4096 * 4096)
    with pytest.raises(SizeError, match="try 480"):
        validate_size(478, 848)
    # the release's rule: closest area, ties to the closest aspect
    assert size_for_area(4096, 96 / 64) == (48, 80)
    assert size_for_area(4096, 64 / 96) == (80, 48)
    assert size_for_area(4096, 120 / 90) == (48, 64)
    assert size_for_area(640 * 640, 1.0) == (640, 640)
    assert video_frames_used(85, 12) == 9 and video_frames_used(5, 12) == 5 and video_frames_used(5, 1) == 1
