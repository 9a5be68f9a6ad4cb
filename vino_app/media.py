"""Reading and preparing reference media: images, videos, letterboxing and the VLM's video reader.

Images are PIL RGB; videos are uint8 arrays `[F, H, W, 3]`. Every reader turns a bad file into a
`MediaError` that names the file.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MediaError
from .sizes import SIZE_MULTIPLE, size_for_area

MAX_IMAGE_PIXELS = 64_000_000  # larger uploads are refused as decompression bombs
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

ImageInput = str | os.PathLike | Image.Image


def _describe(source: Any) -> str:
    return f"'{source}'" if isinstance(source, (str, os.PathLike)) else "the uploaded image"


def _check_file(path: str | os.PathLike, kind: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{kind} '{path}' was not found; check the path (relative paths are read from {Path.cwd()})")
    if path.stat().st_size == 0:
        raise MediaError(f"{kind} '{path}' is empty (0 bytes); upload the file again")
    return path


def to_rgb(image: Image.Image) -> Image.Image:
    """Normalise any PIL image to RGB: EXIF orientation applied, first frame of animations, alpha over white,
    16-bit and CMYK converted."""
    if getattr(image, "is_animated", False):
        image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        image = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def load_image(source: ImageInput) -> Image.Image:
    """Open an image file (or take a PIL image) and return it fully decoded as RGB."""
    if isinstance(source, Image.Image):
        image = source
    else:
        path = _check_file(source, "image")
        try:
            image = Image.open(path)
            if image.width * image.height <= MAX_IMAGE_PIXELS:  # checked before decoding: a bomb is small on disk
                image.load()
        except Image.DecompressionBombError:
            image = None
        except UnidentifiedImageError:
            raise MediaError(f"image {_describe(source)} is not an image PIL can read; use PNG, JPEG or WebP") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise MediaError(f"image {_describe(source)} is damaged or truncated ({exc}); export it again") from None
        if image is None or image.width * image.height > MAX_IMAGE_PIXELS:
            raise MediaError(
                f"image {_describe(source)} is too large to open safely (over {MAX_IMAGE_PIXELS // 1_000_000} "
                "megapixels); downscale it first"
            )
    if image.width < 1 or image.height < 1:
        raise MediaError(f"image {_describe(source)} has no pixels")
    try:
        return to_rgb(image)
    except (OSError, ValueError) as exc:
        raise MediaError(f"image {_describe(source)} could not be converted to RGB ({exc})") from None


def letterbox(image: Image.Image, area: int) -> Image.Image:
    """Fit `image` (aspect kept, LANCZOS) centred on white onto the 16-multiple grid closest to `area` px."""
    height, width = size_for_area(area, image.width / image.height)
    scale = min(width / image.width, height / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(image.resize(inner, Image.LANCZOS), ((width - inner[0]) // 2, (height - inner[1]) // 2))
    return canvas


@dataclass
class VideoClip:
    """A decoded video: `frames` uint8 `[F, H, W, 3]`, `fps` frames per second, `path` where it came from."""

    frames: np.ndarray
    fps: float
    path: str

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> VideoClip:
    """Decode the frames of a video file with PyAV (all of them, or the first `max_frames`)."""
    import av

    path = _check_file(path, "video")
    frames, rate = [], None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"video '{path}' has no video stream; upload an MP4, WebM or MOV with pictures")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            for frame in itertools.islice(container.decode(stream), max_frames):
                frames.append(frame.to_ndarray(format="rgb24"))
    except av.error.EOFError:  # the file ends before (more) frames: keep what was decoded
        pass
    except MediaError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"video '{path}' cannot be decoded ({exc}); re-encode it as H.264 MP4") from None
    if not frames:
        raise MediaError(f"video '{path}' contains no frames; upload a video with at least one frame")
    return VideoClip(np.stack(frames), float(rate) if rate else 24.0, str(path))


def resize_video(clip: VideoClip, area: int, num_frames: int) -> np.ndarray:
    """First `num_frames` frames resized to `area` px (aspect kept, bilinear) and cropped to 16-multiples from the
    top-left corner (the closest match to the release's reference latents we found; see docs/conformance.md).

    Returns uint8 `[num_frames, H, W, 3]`.
    """
    _, src_h, src_w, _ = clip.frames.shape
    scale = math.sqrt(area / (src_h * src_w))
    new_h, new_w = max(SIZE_MULTIPLE, round(src_h * scale)), max(SIZE_MULTIPLE, round(src_w * scale))
    crop_h, crop_w = (new_h // SIZE_MULTIPLE) * SIZE_MULTIPLE, (new_w // SIZE_MULTIPLE) * SIZE_MULTIPLE
    out = []
    for frame in clip.frames[:num_frames]:
        resized = Image.fromarray(frame).resize((new_w, new_h), Image.BILINEAR)
        out.append(np.asarray(resized)[:crop_h, :crop_w])
    return np.stack(out)


def to_model_pixels(frames: np.ndarray | Image.Image) -> torch.Tensor:
    """uint8 `[F, H, W, 3]` frames or a PIL image -> float pixels in [-1, 1], `[1, 3, F, H, W]`."""
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    tensor = torch.from_numpy(np.array(array, copy=True)).float().div(127.5).sub(1.0)
    return tensor.permute(3, 0, 1, 2).unsqueeze(0)


def _read_video_pyav(ele: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any], float]:
    """qwen-vl-utils video reader backed by PyAV, with the same frame sampling as its own readers."""
    from qwen_vl_utils.vision_process import smart_nframes

    clip = read_video(ele["video"])
    total = clip.num_frames
    nframes = smart_nframes(ele, total_frames=total, video_fps=clip.fps)
    idx = torch.linspace(0, total - 1, nframes).round().long()
    video = torch.from_numpy(clip.frames[idx.numpy()]).permute(0, 3, 1, 2)
    metadata = {"fps": clip.fps, "frames_indices": idx, "total_num_frames": total, "video_backend": "pyav"}
    return video, metadata, nframes / max(total, 1e-6) * clip.fps


def use_pyav_for_qwen_vl_utils() -> None:
    """Register the PyAV reader as qwen-vl-utils' video backend (decord/torchcodec need system FFmpeg)."""
    from qwen_vl_utils import vision_process

    vision_process.VIDEO_READER_BACKENDS["pyav"] = _read_video_pyav
    vision_process.FORCE_QWENVL_VIDEO_READER = "pyav"
    vision_process.get_video_reader_backend.cache_clear()
