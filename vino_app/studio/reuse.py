"""Settings reused from a file a person drops (a PNG / MP4 with settings embedded, or a task-file sidecar) or from
this session's history. A dropped file is untrusted: its instruction and settings are checked like the controls,
and the references it names are never opened; they are listed by file name so the person attaches them again."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Iterable

from ..errors import VinoInputError
from ..export import SETTINGS_KEY, read_settings_text
from ..tasks import TaskSpec, load_json, parse_task_rows
from .limits import check_counts, check_text
from .settings import GenerationSettings

REUSE_SUFFIXES = (".png", ".mp4", ".json")
MAX_REUSE_BYTES = 1_000_000  # a sidecar or settings chunk is a few kilobytes


@dataclass(frozen=True)
class Reused:
    """What a reuse fills in: the instruction, the settings, the references that could be attached (files this
    session owns), the file names of those to attach again, and how many images and whether a video the request
    had (what its settings were resolved for)."""

    prompt: str
    settings: GenerationSettings
    images: tuple[str, ...] = ()
    video: str | None = None
    attach_again: tuple[str, ...] = ()
    num_images: int = 0
    has_video: bool = False

    def note(self) -> str:
        """A line for the page: which references to attach again (by file name only)."""
        if not self.attach_again:
            return "Settings and instruction reused."
        return (
            "Settings and instruction reused; attach the references again (they are not read from the file): "
            + ", ".join(self.attach_again)
        )


def from_file(path: str | os.PathLike) -> Reused:
    """Settings from a dropped PNG / MP4 (settings embedded by the studio or the CLI) or a task-file sidecar."""
    path = Path(path)
    if path.suffix.lower() not in REUSE_SUFFIXES:
        raise VinoInputError(f"'{path.name}' is not a PNG, MP4 or .json file made by VINO Studio")
    if path.stat().st_size > MAX_REUSE_BYTES and path.suffix.lower() == ".json":
        raise VinoInputError(f"'{path.name}' is larger than a VINO sidecar can be ({MAX_REUSE_BYTES:,} bytes at most)")
    if path.suffix.lower() == ".json":
        specs = parse_task_rows(load_json(_text(path), path.name), path.name)
        if not specs:
            raise VinoInputError(f"'{path.name}' holds no task; drop the .json sidecar saved with a result")
        return _reused(specs[0], {}, path.name)
    text = read_settings_text(path)
    if not text:
        raise VinoInputError(f"'{path.name}' carries no VINO settings; drop a file saved by VINO Studio")
    if len(text) > MAX_REUSE_BYTES:
        raise VinoInputError(f"the '{SETTINGS_KEY}' settings in '{path.name}' exceed {MAX_REUSE_BYTES:,} bytes")
    data = load_json(text, path.name)
    if not isinstance(data, dict) or not isinstance(data.get("request"), dict):
        raise VinoInputError(f"'{path.name}' carries no VINO request (its '{SETTINGS_KEY}' settings lack 'request')")
    request, settings = data["request"], data.get("settings")
    row = {
        "caption": request.get("caption"),
        "ref_image_paths": request.get("image_paths"),
        "ref_video_path": request.get("video_path"),
        "task": request.get("task"),
    }
    spec = parse_task_rows([row], path.name)[0]
    studio = settings.get("studio", {}) if isinstance(settings, dict) else None
    if not isinstance(studio, dict):
        raise VinoInputError(f"'{path.name}': the embedded 'settings' must be a JSON object")
    return _reused(spec, studio, path.name)


def from_entry(entry: Any, owned: Iterable[str | os.PathLike]) -> Reused:
    """Settings of a history entry; its references are attached again only when they lie in `owned` folders
    (files the studio wrote or Gradio received as uploads), else named by file name."""
    if not isinstance(entry, dict) or not isinstance(entry.get("prompt"), str):
        raise VinoInputError("Pick an item in the history or the grid first.")
    folders = [Path(f).resolve() for f in owned]
    images, video = entry.get("images") or [], entry.get("video")
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        raise VinoInputError("the item's images must be a list of file paths")
    if not (video is None or isinstance(video, str)):
        raise VinoInputError("the item's video must be a file path")
    kept = [p for p in images if _owned(p, folders)]
    keep_video = video if video and _owned(video, folders) else None
    missing = [p for p in [*images, video] if p and p not in kept and p != keep_video]
    return Reused(
        check_text(entry["prompt"], "instruction"),
        GenerationSettings.from_dict(entry.get("settings", {})),
        tuple(kept),
        keep_video,
        tuple(_name(p) for p in missing),
        len(images),
        bool(video),
    )


def _reused(spec: TaskSpec, settings: dict, name: str) -> Reused:
    check_counts(len(spec.image_paths), int(spec.video_path is not None))
    try:
        values = GenerationSettings.from_dict(settings)
    except VinoInputError as exc:
        raise VinoInputError(f"'{name}': {exc}") from None
    references = [*spec.image_paths, *([spec.video_path] if spec.video_path else [])]
    return Reused(check_text(spec.caption, "instruction"), values, attach_again=tuple(_name(p) for p in references),
                  num_images=len(spec.image_paths), has_video=spec.video_path is not None)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise VinoInputError(f"'{path.name}' is not UTF-8 text; drop the .json sidecar saved with a result") from None


def _name(path: str) -> str:
    """The file name of a path as written in a file (POSIX or Windows separators), never its folders."""
    return PurePath(str(path).replace("\\", "/")).name or "?"


def _owned(path: Any, folders: list[Path]) -> bool:
    if not isinstance(path, str):
        return False
    resolved = Path(path).resolve()
    return resolved.is_file() and any(resolved.is_relative_to(folder) for folder in folders)
