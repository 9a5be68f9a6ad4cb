"""The generation controls as one record: the components, the posted values -> `GenerationSettings`, and
settings -> the values shown. Endpoints that take the controls get one signature built here."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence

import gradio as gr

from ..errors import VinoError
from ..controls import checked, control_dropdown, control_number, control_slider
from ..studio import ASPECTS, TASK_CHOICES, GenerationSettings
from ..studio.limits import check_choice
from ..studio.settings import AUTO_TASK, DEFAULT_ATTENTION, RELEASE_DEFAULTS

RELEASE_FLAG = "release_defaults"
# Trailing controls an API caller may leave out, and what leaving one out means.
OPTIONAL = {RELEASE_FLAG: False, "cache": "off", "attention": DEFAULT_ATTENTION}


@dataclass
class SettingsControls:
    """One component per `GenerationSettings` field (posted in this order; the trailing `OPTIONAL` ones may be
    left out by an API caller). "Release defaults" on: frames (for a chosen task), steps, text CFG, image CFG and
    shift are the release's (`GenerationSettings.released`)."""

    task: gr.Dropdown
    num_frames: gr.Slider
    side: gr.Slider
    aspect: gr.Dropdown
    num_inference_steps: gr.Slider
    guidance_scale: gr.Slider
    image_guidance_scale: gr.Slider
    shift: gr.Slider
    seed: gr.Number
    negative_prompt: gr.Textbox
    release_defaults: gr.Checkbox
    cache: gr.Radio
    attention: gr.Dropdown

    @classmethod
    def create(cls, attention_backends: Callable[[], Sequence[str]]) -> "SettingsControls":
        """Lay the controls out in the current Blocks context (the dice button is the layout's); the speed options
        in an accordion of their own. `attention_backends()` lists those this machine runs (it waits for the model:
        it is asked when a value is posted, and the layout fills the choices when the page loads)."""
        from ..acceleration import CACHE_MODES

        with gr.Row():
            task = control_dropdown("task", list(TASK_CHOICES), AUTO_TASK, label="Task (auto: from the inputs)",
                                    elem_id="task")
            aspect = control_dropdown("aspect", list(ASPECTS), "from references", label="Aspect")
        # False until the page loads (a caller of the API that leaves it out sends the values it gives)
        release = gr.Checkbox(False, label="Release defaults: steps 50, text CFG / shift 5 / 5 for images and "
                              "7 / 7 for videos, image CFG 3 with images, 85 frames for a chosen video task",
                              elem_id="release-defaults")
        frames = control_slider("num_frames", 1, label="Frames (1 = image; 4k+1)", elem_id="frames")
        side = control_slider("side", 640, label="Area (side of a square of the same area, px)", elem_id="side")
        with gr.Row():
            cfg = control_slider("guidance_scale", 5, label="Text CFG", elem_id="cfg")
            image_cfg = control_slider("image_guidance_scale", 1, label="Image CFG (1 = off)", elem_id="image-cfg")
        with gr.Row():
            steps = control_slider("num_inference_steps", 50, label="Steps", elem_id="steps")
            shift = control_slider("shift", 5, label="Shift", elem_id="shift")
        seed = control_number("seed", 0, label="Seed", elem_id="seed")
        negative = gr.Textbox(label="Negative prompt (empty: the release's default)", lines=2)
        with gr.Accordion("Speed", open=False, elem_id="speed"):
            cache = control_dropdown("cache", list(CACHE_MODES), "off", elem_id="cache",
                                     label="Step cache (off: every block every step; fast / faster compute the "
                                     "blocks every 7th / 10th step and extrapolate between)")
            attention = checked(
                gr.Dropdown([DEFAULT_ATTENTION], value=DEFAULT_ATTENTION, elem_id="attention",
                            label="Attention backend (those this machine runs)"),
                lambda payload: check_choice(payload, "attention", attention_backends()),
            )
        return cls(task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative, release, cache, attention)

    def components(self) -> list[gr.components.Component]:
        return [getattr(self, f.name) for f in fields(self)]

    def released(self) -> list[gr.Slider]:
        """The sliders "Release defaults" fills, in `RELEASE_DEFAULTS` order."""
        return [getattr(self, name) for name in RELEASE_DEFAULTS]

    def release_inputs(self) -> list[gr.components.Component]:
        """What the release's values depend on: the box, the task and the frame count (the references are the
        layout's)."""
        return [self.release_defaults, self.task, self.num_frames]


NAMES = tuple(f.name for f in fields(SettingsControls))
REQUIRED = NAMES[: -len(OPTIONAL)]
assert NAMES[len(REQUIRED):] == tuple(OPTIONAL), "the optional controls come last, in OPTIONAL's order"


def settings_from(values: Sequence[Any]) -> GenerationSettings:
    """The posted control values (in `NAMES` order; the trailing `OPTIONAL` ones may be left out) -> settings,
    checked on the server against `limits.CONTROLS`. With "Release defaults" on, the release's values are left
    for `GenerationSettings.resolve` (the task's row of the one table)."""
    values = [v for v in values if not isinstance(v, gr.Request)]  # Gradio passes the request after the controls
    if not len(REQUIRED) <= len(values) <= len(NAMES):
        raise gr.Error(
            f"the settings take {len(REQUIRED)} to {len(NAMES)} values ({', '.join(NAMES)}); got {len(values)}"
        )
    posted = {**OPTIONAL, **dict(zip(NAMES, values))}
    release = posted.pop(RELEASE_FLAG) is True
    negative = posted["negative_prompt"]
    posted["negative_prompt"] = (negative.strip() if isinstance(negative, str) else negative) or None
    settings = GenerationSettings(**posted)
    return settings.released() if release else settings


def values_from(settings: GenerationSettings, num_images: int, has_video: bool) -> list:
    """What the controls show for `settings` with these references attached (release defaults filled in, and
    "Release defaults" on when they are the release's)."""
    resolved = settings.resolve(num_images, has_video)
    shown = {**resolved.to_dict(), "negative_prompt": settings.negative_prompt or ""}
    shown[RELEASE_FLAG] = settings.is_release(num_images, has_video)
    return [shown[name] for name in NAMES]


def released_sliders(release: Any, task: Any, num_frames: Any, num_images: int, has_video: bool) -> list:
    """Updates of the `RELEASE_DEFAULTS` sliders: showing the release's values and not editable while "Release
    defaults" is on (the frame count stays editable with task `auto`), editable otherwise."""
    try:
        settings = GenerationSettings(task=task, num_frames=num_frames)
    except VinoError:  # a value the page never sends: leave the sliders as they are
        return [gr.update() for _ in RELEASE_DEFAULTS]
    if release is not True:
        return [gr.update(interactive=True) for _ in RELEASE_DEFAULTS]
    values = settings.released().resolve(num_images, has_video).to_dict()
    return [gr.update(value=values[name], interactive=name == "num_frames" and task == AUTO_TASK)
            for name in RELEASE_DEFAULTS]


def settings_endpoint(handler: Callable[..., Any], leading: Sequence[str]) -> Callable[..., Any]:
    """`handler(*leading values, settings, request)` as an endpoint taking the `leading` inputs then every control
    (the signature Gradio and the API read: one named parameter each, the `OPTIONAL` ones with their defaults)."""

    def endpoint(*args, request: gr.Request = None):
        if args and isinstance(args[-1], gr.Request):  # Gradio passes it in the signature's place
            *args, request = args
        count = len(leading)
        return handler(*args[:count], settings_from(args[count:]), request)

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(name, kind) for name in (*leading, *REQUIRED)]
    parameters += [inspect.Parameter(name, kind, default=value) for name, value in OPTIONAL.items()]
    parameters.append(inspect.Parameter("request", kind, default=None, annotation=gr.Request))
    endpoint.__signature__ = inspect.Signature(parameters)
    endpoint.__annotations__ = {"request": gr.Request}
    endpoint.__name__ = endpoint.__qualname__ = getattr(handler, "__name__", "endpoint")
    endpoint.__doc__ = handler.__doc__
    if inspect.isgeneratorfunction(handler):
        endpoint = _as_generator(endpoint)
    return endpoint


def _as_generator(endpoint: Callable) -> Callable:
    """The same endpoint as a generator function (Gradio streams only those)."""

    def streaming(*args, request: gr.Request = None):
        yield from endpoint(*args, request=request)

    for name in ("__signature__", "__annotations__", "__name__", "__qualname__", "__doc__"):
        setattr(streaming, name, getattr(endpoint, name))
    return streaming
