"""What a person sets in the studio, and the task presets (`presets/<family>/*.json`) that fill it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import VinoInputError
from .limits import CONTROLS, check_choice, check_text
from ..sizes import validate_num_frames
from ..tasks import TASK_LABELS

AUTO_TASK = "auto"
BASE_TASK = "ti2i_base"  # ti2i whose last image is the one being edited
TASK_CHOICES = (AUTO_TASK, *TASK_LABELS, BASE_TASK)
ASPECTS = {"from references": None, "1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "4:3": 4 / 3, "3:4": 3 / 4}
VIDEO_ASPECT = 848 / 480


def task_fits(task: str, num_images: int, has_video: bool) -> bool:
    """Whether a task choice matches the attached references (`auto` always does)."""
    if task == AUTO_TASK:
        return True
    if task in ("t2i", "t2v"):
        return not num_images and not has_video
    if task in ("tv2v", "tiv2v"):
        return has_video and (num_images > 0) == (task == "tiv2v")
    return not has_video and num_images >= (2 if task == BASE_TASK else 1)


@dataclass(frozen=True)
class GenerationSettings:
    """Every control of a generation. `side`: sqrt of the target area in pixels (area = side^2); `aspect`: a key of
    `ASPECTS`; `task`: a release label, `ti2i_base`, or `auto` (chosen from the inputs)."""

    task: str = AUTO_TASK
    num_frames: int = 1
    side: int = 640
    aspect: str = "from references"
    num_inference_steps: int = 50
    guidance_scale: float = 5.0
    image_guidance_scale: float = 1.0
    shift: float = 5.0
    negative_prompt: str | None = None  # None: the release's default for images / videos
    seed: int = 0

    def __post_init__(self) -> None:
        """Every value checked against `limits.CONTROLS` (finite, whole where it must be, in the sliders' range);
        numbers are stored as int / float."""
        check_choice(self.task, "task", TASK_CHOICES)
        check_choice(self.aspect, "aspect", ASPECTS)
        for name, allowed in CONTROLS.items():
            object.__setattr__(self, name, allowed.check(getattr(self, name)))
        object.__setattr__(self, "negative_prompt", check_text(self.negative_prompt, "negative prompt") or None)
        validate_num_frames(self.num_frames)

    def pipeline_kwargs(self, image_sizes: list[tuple[int, int]], video_size: tuple[int, int] | None) -> dict[str, Any]:
        """Keyword arguments for `VinoPipeline.__call__`. `image_sizes` / `video_size` are (width, height) of the
        attached references, used when the aspect is taken from them."""
        aspect = ASPECTS[self.aspect]
        if aspect is None:
            if image_sizes:
                aspect = image_sizes[-1][0] / image_sizes[-1][1]
            elif video_size:
                aspect = video_size[0] / video_size[1]
            else:
                aspect = 1.0 if self.num_frames == 1 else VIDEO_ASPECT
        return dict(
            task=None if self.task in (AUTO_TASK, BASE_TASK) else self.task,
            base_image=self.task == BASE_TASK,
            num_frames=self.num_frames,
            area=self.side * self.side,
            aspect=aspect,
            num_inference_steps=self.num_inference_steps,
            guidance_scale=self.guidance_scale,
            image_guidance_scale=self.image_guidance_scale,
            shift=self.shift,
            negative_prompt=self.negative_prompt or None,
            seed=self.seed,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "GenerationSettings":
        """Settings from a dict (unknown keys ignored, missing ones default), validated as the controls are."""
        if not isinstance(values, dict):
            raise VinoInputError(f"settings must be a JSON object; got {type(values).__name__}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class Preset:
    """One task preset: the controls, an example instruction and example references (paths from the repo root)."""

    key: str
    name: str
    description: str
    instruction: str
    settings: GenerationSettings
    images: tuple[str, ...] = ()
    video: str | None = None
    root: Path = field(default=Path("."), compare=False)

    def image_paths(self) -> list[str]:
        return [str(self.root / p) for p in self.images]

    def video_path(self) -> str | None:
        return None if self.video is None else str(self.root / self.video)


def load_presets(folder: str | os.PathLike, root: str | os.PathLike) -> list[Preset]:
    """Every `*.json` preset in `folder`, sorted by file name; media paths are relative to `root`."""
    presets = []
    for path in sorted(Path(folder).glob("*.json")):
        data = json.loads(path.read_text())
        try:
            settings = GenerationSettings.from_dict(data["settings"])
            preset = Preset(
                key=path.stem,
                name=data["name"],
                description=data.get("description", ""),
                instruction=data["instruction"],
                settings=settings,
                images=tuple(data.get("images", ())),
                video=data.get("video"),
                root=Path(root),
            )
        except (KeyError, VinoInputError) as exc:
            raise ValueError(f"preset {path} is malformed: {exc}") from exc
        missing = [p for p in [*preset.image_paths(), preset.video_path()] if p and not Path(p).exists()]
        if missing:
            raise ValueError(f"preset {path} names example files that do not exist: {', '.join(missing)}")
        presets.append(preset)
    return presets

