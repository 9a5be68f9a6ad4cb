"""Writing results: PNG for images, H.264 MP4 (yuv420p, 24 fps) for videos, with the settings embedded; a video can
carry the audio of the video it was made from (muxed with moviepy)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

from .errors import MediaError
from .tasks import TaskSpec, write_task_file

VIDEO_FPS = 24
SETTINGS_KEY = "vino"


def save_png(frame: np.ndarray, path: str | os.PathLike, settings: dict[str, Any] | None = None) -> Path:
    """Save one uint8 `[H, W, 3]` frame; `settings` go into a PNG text chunk named 'vino' as JSON."""
    info = PngImagePlugin.PngInfo()
    if settings:
        info.add_text(SETTINGS_KEY, json.dumps(settings, ensure_ascii=False))
    Image.fromarray(frame).save(path, pnginfo=info)
    return Path(path)


def save_mp4(
    frames: np.ndarray, path: str | os.PathLike, settings: dict[str, Any] | None = None, fps: int = VIDEO_FPS
) -> Path:
    """Save uint8 `[F, H, W, 3]` frames as browser-playable H.264 MP4 (yuv420p, faststart); settings in the
    'comment' metadata tag as JSON."""
    import av

    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:
        if settings:
            container.metadata["comment"] = json.dumps(settings, ensure_ascii=False)
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return Path(path)


def write_clip(
    clip: Any, path: str | os.PathLike, settings: dict[str, Any] | None = None, fps: int = VIDEO_FPS
) -> Path:
    """Write a moviepy clip as a browser-playable H.264 MP4 (yuv420p, faststart, AAC audio when it has some), with
    `settings` in the 'comment' metadata tag as JSON (as `save_mp4` does)."""
    params = ["-crf", "18", "-movflags", "+faststart"]
    if settings:
        params += ["-metadata", f"comment={json.dumps(settings, ensure_ascii=False)}"]
    clip.write_videofile(str(path), fps=fps, codec="libx264", audio_codec="aac", pixel_format="yuv420p",
                         ffmpeg_params=params, logger=None)
    return Path(path)


def save_mp4_with_audio(
    frames: np.ndarray, path: str | os.PathLike, audio_from: str | os.PathLike, settings: dict[str, Any] | None = None
) -> Path:
    """`save_mp4`, with the audio track of video `audio_from` (its first seconds, as long as the result) when it has
    one."""
    from moviepy import ImageSequenceClip, VideoFileClip

    with VideoFileClip(str(audio_from)) as source:
        if source.audio is None:
            return save_mp4(frames, path, settings)
        clip = ImageSequenceClip(list(frames), fps=VIDEO_FPS)
        audio = source.audio.subclipped(0, min(clip.duration, source.audio.duration))
        return write_clip(clip.with_audio(audio), path, settings)


def save_result(
    frames: np.ndarray,
    stem: str | os.PathLike,
    settings: dict[str, Any] | None = None,
    audio_from: str | os.PathLike | None = None,
) -> Path:
    """`stem`.png for one frame, `stem`.mp4 for several (with the audio of video `audio_from`, if given)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if frames.shape[0] == 1:
        return save_png(frames[0], stem.with_suffix(".png"), settings)
    if audio_from is not None:
        return save_mp4_with_audio(frames, stem.with_suffix(".mp4"), audio_from, settings)
    return save_mp4(frames, stem.with_suffix(".mp4"), settings)


def save_with_sidecar(
    frames: np.ndarray,
    stem: str | os.PathLike,
    spec: TaskSpec,
    settings: dict[str, Any],
    audio_from: str | os.PathLike | None = None,
) -> tuple[Path, Path]:
    """Write the result (`save_result`, with `{"request": spec, "settings": settings}` embedded) and `stem`.json, the
    request in the released task-file format; returns both paths."""
    path = save_result(frames, stem, {"request": asdict(spec), "settings": settings}, audio_from)
    sidecar = path.with_suffix(".json")
    write_task_file(sidecar, [spec])
    return path, sidecar


def read_settings_text(path: str | os.PathLike) -> str | None:
    """The raw settings text embedded by `save_png` / `save_mp4` (None when there is none); a file that cannot be
    opened raises `MediaError` naming it."""
    path = Path(path)
    if path.suffix.lower() == ".png":
        try:
            with Image.open(path) as image:
                text = getattr(image, "text", {}).get(SETTINGS_KEY)
        except (OSError, SyntaxError, ValueError) as exc:
            raise MediaError(f"'{path.name}' is not a readable PNG ({exc})") from None
    else:
        import av

        try:
            with av.open(str(path)) as container:
                text = container.metadata.get("comment")
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise MediaError(f"'{path.name}' is not a readable MP4 ({exc})") from None
    return text if isinstance(text, str) and text else None


def read_settings(path: str | os.PathLike) -> dict[str, Any] | None:
    """The settings embedded by `save_png` / `save_mp4`, or None."""
    text = read_settings_text(path)
    return json.loads(text) if text else None
