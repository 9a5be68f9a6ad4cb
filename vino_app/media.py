"""Reading and preparing reference media: images, videos, letterboxing and the VLM's video reader.

Images are PIL RGB; videos are uint8 arrays `[F, H, W, 3]`. Every reader turns a bad file into a
`MediaError` that names the file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MediaError
from .sizes import SIZE_MULTIPLE, release_video_size, size_for_area

MAX_IMAGE_PIXELS = 64_000_000  # larger uploads are refused as decompression bombs
# Caps on a reference video, checked from its container before any frame is decoded.
MAX_VIDEO_PIXELS = 2048 * 2048  # per frame
MAX_VIDEO_FPS = 120
MAX_VIDEO_SECONDS = 60
MAX_VIDEO_FRAMES = 1800
FALLBACK_FPS = 24.0  # for streams that state no frame rate (0/0)
DECODED_VIDEO = "vino_decoded"  # key of a qwen-vl-utils video element carrying a `ReferenceVideo`
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


@dataclass(frozen=True)
class VideoInfo:
    """A video's first video stream as its container states it: frames, frames per second, size in pixels,
    duration in seconds and codec name."""

    num_frames: int
    fps: float
    width: int
    height: int
    seconds: float
    codec: str


def _video_stream(container, path: Path):
    """The container's first video stream and its frame rate (None when unstated); `MediaError` naming the file
    (by name only) when it has no video stream."""
    if not container.streams.video:
        raise MediaError(f"video '{path.name}' has no video stream; upload an MP4, WebM or MOV with pictures")
    stream = container.streams.video[0]
    return stream, stream.average_rate or stream.guessed_rate


def video_metadata(path: str | os.PathLike, count_limit: int | None = None) -> VideoInfo:
    """A video's metadata from its container header, or its packet index when the header states no frame count
    (counted up to `count_limit`); no frame is decoded. Raises `MediaError` naming the file when it has no video
    stream or cannot be read."""
    import av

    path = _check_file(path, "video")
    try:
        with av.open(str(path)) as container:
            stream, rate = _video_stream(container, path)
            fps = float(rate) if rate else FALLBACK_FPS
            frames = stream.frames or _count_packets(container, stream, count_limit)
            seconds = float(container.duration / av.time_base) if container.duration else frames / fps
            context = stream.codec_context
            info = VideoInfo(frames, fps, context.width, context.height, seconds, context.name)
    except MediaError:
        raise
    except av.error.EOFError:  # the file ends before its first frame
        raise MediaError(f"video '{path.name}' contains no frames; upload a video with at least one frame") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"video '{path.name}' cannot be read ({type(exc).__name__}); upload an H.264 MP4") from None
    if info.num_frames < 1:
        raise MediaError(f"video '{path.name}' contains no frames; upload a video with at least one frame")
    return info


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """`video_metadata`, checked against the caps on a reference video: at most `MAX_VIDEO_FRAMES` frames,
    `MAX_VIDEO_FPS` fps, `MAX_VIDEO_PIXELS` per frame and `MAX_VIDEO_SECONDS`. Raises `MediaError` naming the file
    and the cap."""
    info, name = video_metadata(path, count_limit=MAX_VIDEO_FRAMES + 1), Path(path).name
    side = math.isqrt(MAX_VIDEO_PIXELS)
    if info.width * info.height > MAX_VIDEO_PIXELS:
        size = f"{info.width}x{info.height}"
        raise MediaError(f"video '{name}' is {size}; at most {side}x{side} pixels per frame: downscale it first")
    if info.fps > MAX_VIDEO_FPS:
        raise MediaError(f"video '{name}' runs at {info.fps:g} fps; at most {MAX_VIDEO_FPS} fps: re-encode it at 24-60")
    if info.seconds > MAX_VIDEO_SECONDS:
        raise MediaError(f"video '{name}' lasts {info.seconds:.0f} s; at most {MAX_VIDEO_SECONDS} s: trim it first")
    if info.num_frames > MAX_VIDEO_FRAMES:
        raise MediaError(f"video '{name}' has more than {MAX_VIDEO_FRAMES} frames: trim it first")
    return info


def _count_packets(container: Any, stream: Any, limit: int | None) -> int:
    """Frames of `stream` counted from its packets (demuxed, not decoded), stopping at `limit` (None: all)."""
    import av

    count = 0
    try:
        for packet in container.demux(stream):
            count += bool(packet.size)
            if limit is not None and count >= limit:
                break
    except av.error.EOFError:  # a file cut short: count what is there
        pass
    return count


def to_model_pixels(frames: np.ndarray | Image.Image) -> torch.Tensor:
    """uint8 `[F, H, W, 3]` frames or a PIL image -> float pixels in [-1, 1], `[1, 3, F, H, W]`."""
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    tensor = torch.from_numpy(np.array(array, copy=True)).float().div(127.5).sub(1.0)
    return tensor.permute(3, 0, 1, 2).unsqueeze(0)


def sampled_frames(ele: dict[str, Any], total: int, fps: float) -> torch.Tensor:
    """Indices of the frames the VLM sees: qwen-vl-utils' uniform sampling of `ele["nframes"]` frames, or, for a
    video shorter than that, every frame (an even count, the last one repeated for a single frame)."""
    from qwen_vl_utils.vision_process import FRAME_FACTOR, smart_nframes

    if total >= ele.get("nframes", 0):
        nframes = smart_nframes(ele, total_frames=total, video_fps=fps)
    else:
        nframes = max(FRAME_FACTOR, total // FRAME_FACTOR * FRAME_FACTOR)
    return torch.linspace(0, total - 1, nframes).round().long()


@dataclass
class ReferenceVideo:
    """A reference video decoded once for the VAE and the VLM.

    frames: uint8 `[F, H, W, 3]`, the first frames scaled inside FFmpeg to the release's size and cropped to
    16-multiples (None when none were asked for). vlm_frames: uint8 `[n, 3, H0, W0]`, the frames qwen-vl-utils
    samples, at the file's size; vlm_metadata / vlm_fps: what its video readers return with them.
    """

    frames: np.ndarray | None
    vlm_frames: torch.Tensor
    vlm_metadata: dict[str, Any]
    vlm_fps: float


def _release_scaler(stream: Any, height: int, width: int) -> Any:
    """FFmpeg filter graph `buffer -> scale=width:height:flags=bilinear -> format=rgb24 -> buffersink`: the
    release's scaling inside the decoder (decord's FFmpeg `scale`, bilinear by default)."""
    import av

    graph = av.filter.Graph()
    scale = graph.add("scale", f"{width}:{height}:flags=bilinear")
    graph.link_nodes(graph.add_buffer(template=stream), scale, graph.add("format", "rgb24"), graph.add("buffersink"))
    graph.configure()
    return graph


def _decode(path: Path, num_frames: int, size: tuple[int, int], wanted: set[int]) -> tuple[list, dict[int, np.ndarray]]:
    """One decoding pass: the first `num_frames` frames scaled to `size` (height, width) by `_release_scaler`, and
    the frames at the indices `wanted` as decoded (rgb24, the file's size). Stops after the last one needed."""
    import av

    scaled, kept = [], {}
    last = max(num_frames - 1, max(wanted, default=-1))
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            scaler = _release_scaler(stream, *size) if num_frames else None
            for i, frame in enumerate(container.decode(stream)):
                if i < num_frames:
                    scaler.push(frame)
                    scaled.append(scaler.pull().to_ndarray())
                if i in wanted:
                    kept[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
    except av.error.EOFError:  # the file ends before (more) frames: keep what was decoded
        pass
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(
            f"video '{path.name}' cannot be decoded ({type(exc).__name__}); re-encode it as H.264 MP4"
        ) from None
    return scaled, kept


def read_reference_video(
    path: str | os.PathLike, num_frames: int, area: int, vlm_options: dict[str, Any]
) -> ReferenceVideo:
    """Read a reference video in one decoding pass: its first `num_frames` frames (stride 1) at the release's size
    for `area` px (`release_video_size`, then the top-left crop to 16-multiples) and the frames the VLM samples
    with `vlm_options` (qwen-vl-utils' `nframes`, ...). Raises `MediaError` naming the file."""
    path = _check_file(path, "video")
    info = video_metadata(path)
    idx = sampled_frames(vlm_options, info.num_frames, info.fps)
    height, width = release_video_size(info.height, info.width, area) if num_frames else (0, 0)
    scaled, kept = _decode(path, num_frames, (height, width), set(idx.tolist()))
    if not kept:  # frame 0 is always sampled: nothing decoded
        raise MediaError(f"video '{path.name}' contains no decodable frames; re-encode it as H.264 MP4")
    crop_h, crop_w = (height // SIZE_MULTIPLE) * SIZE_MULTIPLE, (width // SIZE_MULTIPLE) * SIZE_MULTIPLE
    frames = np.stack(scaled)[:, :crop_h, :crop_w] if scaled else None
    last = kept[max(kept)]  # a stated frame count can exceed what decodes: repeat the last decoded frame
    vlm = np.stack([kept.get(i, last) for i in idx.tolist()])
    metadata = {"fps": info.fps, "frames_indices": idx, "total_num_frames": info.num_frames, "video_backend": "pyav"}
    vlm_fps = len(idx) / info.num_frames * info.fps
    return ReferenceVideo(frames, torch.from_numpy(vlm).permute(0, 3, 1, 2), metadata, vlm_fps)


def _read_video_pyav(ele: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any], float]:
    """qwen-vl-utils video reader backed by PyAV, with the same frame sampling as its own readers: the frames of
    `ele[DECODED_VIDEO]` (a `ReferenceVideo` already read) or of a decoding pass that keeps only the sampled ones."""
    video = ele.get(DECODED_VIDEO) or read_reference_video(ele["video"], 0, 0, ele)
    return video.vlm_frames, video.vlm_metadata, video.vlm_fps


def use_pyav_for_qwen_vl_utils() -> None:
    """Register the PyAV reader as qwen-vl-utils' video backend (decord/torchcodec need system FFmpeg)."""
    from qwen_vl_utils import vision_process

    vision_process.VIDEO_READER_BACKENDS["pyav"] = _read_video_pyav
    vision_process.FORCE_QWENVL_VIDEO_READER = "pyav"
    vision_process.get_video_reader_backend.cache_clear()
