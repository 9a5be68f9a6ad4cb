"""The nine VINO tasks and the released task-file format.

A task file is a JSON list of `{index, task, caption, ref_image_paths?, ref_video_path?, ref_image_have_base?}`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import VinoInputError

SIZE_FROM_REQUEST = "request"  # the requested height x width (or area and aspect)
SIZE_FROM_LAST_IMAGE = "last image"  # the last (letterboxed) reference image
SIZE_FROM_VIDEO = "video"  # size and frame count of the processed reference video
IMAGE_FRAMES = 1
VIDEO_FRAMES = 85  # the release's default video length (4k+1)
STEPS = 50
IMAGE_CFG_WITH_IMAGES = 3.0  # the released examples' image CFG (1 = off; the release recommends 1.0-3.0)


def release_cfg(num_frames: int) -> float:
    """The release's text CFG (and shift) for `num_frames` output frames: 5 for an image, 7 for a video."""
    return 5.0 if num_frames == 1 else 7.0


@dataclass(frozen=True)
class Task:
    """One of the nine VINO tasks: what it needs, what it makes and the release's defaults for it.

    `label`: the release's task-file label (clone is labelled tiv2v); `min_images` / `max_images`: reference images
    allowed (None: no upper bound); `video`: whether it edits Video 1; `base_image`: the last image is the one being
    edited; `frames`: output frames by default (1 = an image); `size_from`: one of `SIZE_FROM_*`. The release's sampling
    defaults: `steps`, and the properties `text_cfg` / `shift` (5 for images, 7 for videos) and `image_cfg` (3 with
    reference images, else 1 = off)."""

    name: str
    label: str
    min_images: int
    max_images: int | None
    video: bool
    frames: int
    size_from: str
    base_image: bool = False
    steps: int = STEPS

    @property
    def is_video(self) -> bool:
        return self.frames > 1

    @property
    def text_cfg(self) -> float:
        return release_cfg(self.frames)

    @property
    def shift(self) -> float:
        return self.text_cfg

    @property
    def image_cfg(self) -> float:
        return IMAGE_CFG_WITH_IMAGES if self.min_images else 1.0

    def fits(self, num_images: int, has_video: bool) -> bool:
        """Whether the attached references are the ones this task takes."""
        enough = num_images >= self.min_images and (self.max_images is None or num_images <= self.max_images)
        return enough and has_video == self.video


TASKS = {
    task.name: task
    for task in (
        Task("t2i", "t2i", 0, 0, False, IMAGE_FRAMES, SIZE_FROM_REQUEST),
        Task("t2v", "t2v", 0, 0, False, VIDEO_FRAMES, SIZE_FROM_REQUEST),
        Task("i2v", "i2v", 1, None, False, VIDEO_FRAMES, SIZE_FROM_LAST_IMAGE),
        Task("ti2v", "ti2v", 1, None, False, VIDEO_FRAMES, SIZE_FROM_REQUEST),
        Task("ti2i", "ti2i", 1, None, False, IMAGE_FRAMES, SIZE_FROM_LAST_IMAGE),
        Task("ti2i_base", "ti2i", 2, None, False, IMAGE_FRAMES, SIZE_FROM_LAST_IMAGE, base_image=True),
        Task("tv2v", "tv2v", 0, 0, True, VIDEO_FRAMES, SIZE_FROM_VIDEO),
        Task("tiv2v", "tiv2v", 1, None, True, VIDEO_FRAMES, SIZE_FROM_VIDEO),
        Task("clone", "tiv2v", 1, None, True, VIDEO_FRAMES, SIZE_FROM_VIDEO),
    )
}
TASK_LABELS = tuple(dict.fromkeys(task.label for task in TASKS.values()))  # the release's seven labels


def task_for_label(label: str, base_image: bool = False) -> Task:
    """The table row of a release label (tiv2v: the edit row; its clone row has the same rules and defaults)."""
    return TASKS["ti2i_base"] if label == "ti2i" and base_image else TASKS[label]


def infer_task(num_images: int, has_video: bool, num_frames: int) -> str:
    """The release's task label for a set of inputs (clone requests are labelled tiv2v, as in the release)."""
    if has_video:
        return "tiv2v" if num_images else "tv2v"
    if not num_images:
        return "t2i" if num_frames == 1 else "t2v"
    if num_frames == 1:
        return "ti2i"
    return "i2v" if num_images == 1 else "ti2v"


def check_task(task: str, num_images: int, has_video: bool) -> str:
    """Validate a release task label against the attached inputs (the release runs any label whose size rule
    finds its reference)."""
    if task not in TASK_LABELS:
        raise VinoInputError(f"unknown task '{task}'; use one of {', '.join(TASK_LABELS)}")
    row = task_for_label(task)
    if row.size_from == SIZE_FROM_VIDEO and not has_video:
        raise VinoInputError(f"task '{task}' edits a video: attach Video 1")
    if row.size_from == SIZE_FROM_LAST_IMAGE and not num_images:
        raise VinoInputError(f"task '{task}' needs at least one image: attach Image 1")
    return task


@dataclass
class TaskSpec:
    """One row of a task file, with media paths resolved."""

    index: str
    task: str
    caption: str
    image_paths: list[str] = field(default_factory=list)
    video_path: str | None = None
    base_image: bool = False


def _resolve(path: str, task_dir: Path) -> str:
    """A media path as written, else relative to the task file's folder (when that one exists)."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    beside = task_dir / path
    return str(beside) if beside.exists() else path


def parse_task_rows(rows: object, name: str, base: Path | None = None) -> list[TaskSpec]:
    """Task-file rows (already parsed JSON) -> specs; errors name the file (`name`), the row and the field. Media
    paths are resolved against `base` (see `_resolve`) or, with `base=None`, kept exactly as written."""
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list):
        raise VinoInputError(f"task file '{name}' must hold a JSON list of tasks; got {type(rows).__name__}")
    resolve = (lambda p: p) if base is None else (lambda p: _resolve(p, base))
    specs = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("caption"), str):
            raise VinoInputError(f"task file '{name}', row {n}: each task needs a 'caption' string")
        images = row.get("ref_image_paths") or []
        if isinstance(images, str):
            images = [images]
        if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
            raise VinoInputError(f"task file '{name}', row {n}: 'ref_image_paths' must be a list of file names")
        video = row.get("ref_video_path") or None
        if video is not None and not isinstance(video, str):
            raise VinoInputError(f"task file '{name}', row {n}: 'ref_video_path' must be a file name")
        task = row.get("task") or infer_task(len(images), video is not None, 1)
        if not isinstance(task, str):
            raise VinoInputError(f"task file '{name}', row {n}: 'task' must be one of {', '.join(TASK_LABELS)}")
        specs.append(
            TaskSpec(
                index=str(row.get("index", n)),
                task=task,
                caption=row["caption"],
                image_paths=[resolve(p) for p in images],
                video_path=resolve(video) if video else None,
                base_image=bool(row.get("ref_image_have_base", False)),
            )
        )
    return specs


def load_json(text: str, name: str) -> object:
    """JSON text -> value; malformed or absurdly nested text raises a `VinoInputError` naming `name`."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VinoInputError(f"'{name}' is not valid JSON ({exc})") from None
    except RecursionError:
        raise VinoInputError(f"'{name}' is nested too deeply to be a VINO task file or settings") from None


def read_task_file(path: str | os.PathLike, resolve: bool = True) -> list[TaskSpec]:
    """Parse a released-format task file; errors name the file, the row and the field. With `resolve=False` media
    paths are kept as written (nothing named in the file is looked up)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise VinoInputError(f"task file '{path}' was not found") from None
    except UnicodeDecodeError:
        raise VinoInputError(f"task file '{path}' is not UTF-8 text") from None
    return parse_task_rows(load_json(text, str(path)), str(path), path.parent if resolve else None)


def write_task_file(path: str | os.PathLike, specs: list[TaskSpec]) -> None:
    """Write tasks in the released format (the sidecar that makes a result reproducible)."""
    rows = []
    for s in specs:
        row = {"index": s.index, "task": s.task, "caption": s.caption}
        if s.image_paths:
            row["ref_image_paths"] = s.image_paths
        if s.video_path:
            row["ref_video_path"] = s.video_path
        if s.base_image:
            row["ref_image_have_base"] = True
        rows.append(row)
    Path(path).write_text(json.dumps(rows, indent=1, ensure_ascii=False))
