"""What a person sets in the studio, and the task presets (`presets/<family>/*.json`) that fill it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..acceleration import CACHE_MODES, DEFAULT_ATTENTION, attention_backends
from ..errors import VinoInputError
from .limits import CONTROLS, check_choice, check_text
from ..sizes import validate_num_frames
from ..tasks import IMAGE_FRAMES, TASKS, Task, infer_task, release_cfg, task_for_label

AUTO_TASK = "auto"
TASK_CHOICES = (AUTO_TASK, *TASKS)
ASPECTS = {"from references": None, "1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "4:3": 4 / 3, "3:4": 3 / 4}
VIDEO_ASPECT = 848 / 480
RELEASE_DEFAULTS = ("num_frames", "num_inference_steps", "guidance_scale", "image_guidance_scale", "shift")


def task_fits(task: str, num_images: int, has_video: bool) -> bool:
    """Whether a task choice matches the attached references (`auto` always does)."""
    return task == AUTO_TASK or TASKS[task].fits(num_images, has_video)


def release_values(task: Task, num_frames: int) -> dict[str, Any]:
    """The release's value of each of `RELEASE_DEFAULTS` for `task` at `num_frames` frames."""
    return dict(
        num_frames=num_frames,
        num_inference_steps=task.steps,
        guidance_scale=release_cfg(num_frames),
        image_guidance_scale=task.image_cfg,
        shift=release_cfg(num_frames),
    )


@dataclass(frozen=True)
class GenerationSettings:
    """Every control of a generation. `side`: sqrt of the target area in pixels (area = side^2); `aspect`: a key of
    `ASPECTS`; `task`: a name in `tasks.TASKS` or `auto` (chosen from the inputs). Frames, steps, CFG and shift left
    None are the release's default for the task and frame count (`resolve` fills them in). `cache`: step caching
    (`acceleration.CACHE_MODES`); `attention`: the MMDiT's attention backend (`acceleration.ATTENTION_BACKENDS`;
    whether this machine runs it is checked when the job runs)."""

    task: str = AUTO_TASK
    num_frames: int | None = None
    side: int = 640
    aspect: str = "from references"
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    image_guidance_scale: float | None = None
    shift: float | None = None
    negative_prompt: str | None = None  # None: the release's default for images / videos
    seed: int = 0
    cache: str = "off"
    attention: str = DEFAULT_ATTENTION

    def __post_init__(self) -> None:
        """Every value checked against `limits.CONTROLS` (finite, whole where it must be, in the sliders' range);
        numbers are stored as int / float."""
        check_choice(self.task, "task", TASK_CHOICES)
        check_choice(self.aspect, "aspect", ASPECTS)
        check_choice(self.cache, "cache", CACHE_MODES)
        if self.attention != DEFAULT_ATTENTION:  # the backends' names come from diffusers
            check_choice(self.attention, "attention", attention_backends())
        for name, allowed in CONTROLS.items():
            value = getattr(self, name)
            if value is not None or name not in RELEASE_DEFAULTS:
                object.__setattr__(self, name, allowed.check(value))
        object.__setattr__(self, "negative_prompt", check_text(self.negative_prompt, "negative prompt") or None)
        if self.num_frames is not None:
            validate_num_frames(self.num_frames)

    def task_for(self, num_images: int, has_video: bool) -> Task:
        """The table row this request runs as (`auto`: the release's rule for the inputs and frame count)."""
        if self.task != AUTO_TASK:
            return TASKS[self.task]
        return task_for_label(infer_task(num_images, has_video, self.num_frames or IMAGE_FRAMES))

    def released(self) -> "GenerationSettings":
        """These settings with steps, text CFG, image CFG and shift left to the release; the frame count too when
        the task is chosen (with `auto` the frame count is what tells an image from a video, so it stays)."""
        keep_frames = self.task == AUTO_TASK
        return replace(self, **{k: None for k in RELEASE_DEFAULTS if not (k == "num_frames" and keep_frames)})

    def is_release(self, num_images: int, has_video: bool) -> bool:
        """Whether these settings are the release's defaults for the task the references make."""
        return self.released().resolve(num_images, has_video) == self.resolve(num_images, has_video)

    def resolve(self, num_images: int, has_video: bool) -> "GenerationSettings":
        """These settings with every release default filled in for the task the references make."""
        task = self.task_for(num_images, has_video)
        defaults = release_values(task, task.frames if self.num_frames is None else self.num_frames)
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})

    def pipeline_kwargs(self, image_sizes: list[tuple[int, int]], video_size: tuple[int, int] | None) -> dict[str, Any]:
        """Keyword arguments for `VinoPipeline.__call__`, release defaults filled in. `image_sizes` / `video_size`
        are (width, height) of the attached references, used when the aspect is taken from them."""
        settings = self.resolve(len(image_sizes), video_size is not None)
        aspect = ASPECTS[self.aspect]
        if aspect is None:
            if image_sizes:
                aspect = image_sizes[-1][0] / image_sizes[-1][1]
            elif video_size:
                aspect = video_size[0] / video_size[1]
            else:
                aspect = 1.0 if settings.num_frames == 1 else VIDEO_ASPECT
        task = settings.task_for(len(image_sizes), video_size is not None)
        return dict(
            task=None if self.task == AUTO_TASK else task.label,
            base_image=task.base_image,
            num_frames=settings.num_frames,
            area=self.side * self.side,
            aspect=aspect,
            num_inference_steps=settings.num_inference_steps,
            guidance_scale=settings.guidance_scale,
            image_guidance_scale=settings.image_guidance_scale,
            shift=settings.shift,
            negative_prompt=self.negative_prompt or None,
            seed=self.seed,
            cache=self.cache,
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
    """One task preset: the controls, an example instruction and example references (paths from the repo root).
    `settings_note` says why its settings are not the release's defaults for its task (empty when they are)."""

    key: str
    name: str
    description: str
    instruction: str
    settings: GenerationSettings
    images: tuple[str, ...] = ()
    video: str | None = None
    settings_note: str = ""
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
                settings_note=data.get("settings_note", ""),
                root=Path(root),
            )
        except (KeyError, VinoInputError) as exc:
            raise ValueError(f"preset {path} is malformed: {exc}") from exc
        missing = [p for p in [*preset.image_paths(), preset.video_path()] if p and not Path(p).exists()]
        if missing:
            raise ValueError(f"preset {path} names example files that do not exist: {', '.join(missing)}")
        presets.append(preset)
    return presets

