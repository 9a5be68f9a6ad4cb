"""The ten generation controls as one record: the components, the posted values -> `GenerationSettings`, and
settings -> the values shown. Endpoints that take the controls get one signature built here."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Sequence

import gradio as gr

from ..controls import control_dropdown, control_number, control_slider
from ..tasks import release_cfg as default_guidance
from ..studio import ASPECTS, TASK_CHOICES, GenerationSettings

RELEASE_FIELDS = ("guidance_scale", "shift")  # what "Release defaults" takes from the release (for the frame count)
RELEASE_FLAG = "release_defaults"


@dataclass
class SettingsControls:
    """One component per `GenerationSettings` field (posted in this order), then the "Release defaults" box."""

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

    @classmethod
    def create(cls) -> "SettingsControls":
        """Lay the controls out in the current Blocks context (the dice button is the layout's)."""
        with gr.Row():
            task = control_dropdown("task", list(TASK_CHOICES), "auto", label="Task (auto: from the inputs)",
                                    elem_id="task")
            aspect = control_dropdown("aspect", list(ASPECTS), "from references", label="Aspect")
        frames = control_slider("num_frames", 1, label="Frames (1 = image; 4k+1)", elem_id="frames")
        side = control_slider("side", 640, label="Area (side of a square of the same area, px)")
        # False until the page loads (a caller of the API that leaves it out sends the values it gives)
        release = gr.Checkbox(False, label="Release defaults for text CFG and shift (5 / 5 images, 7 / 7 videos)",
                              elem_id="release-defaults")
        with gr.Row():
            cfg = control_slider("guidance_scale", 5, label="Text CFG", elem_id="cfg")
            image_cfg = control_slider("image_guidance_scale", 1, label="Image CFG (1 = off)")
        with gr.Row():
            steps = control_slider("num_inference_steps", 50, label="Steps", elem_id="steps")
            shift = control_slider("shift", 5, label="Shift", elem_id="shift")
        seed = control_number("seed", 0, label="Seed", elem_id="seed")
        negative = gr.Textbox(label="Negative prompt (empty: the release's default)", lines=2)
        return cls(task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative, release)

    def components(self) -> list[gr.components.Component]:
        return [getattr(self, f.name) for f in fields(self)]

    def released(self) -> list[gr.Slider]:
        """The sliders that "Release defaults" fills."""
        return [getattr(self, name) for name in RELEASE_FIELDS]


NAMES = tuple(f.name for f in fields(SettingsControls))


def settings_from(values: Sequence[Any]) -> GenerationSettings:
    """The posted control values (in `NAMES` order; "Release defaults" may be left out, meaning off) -> settings,
    checked on the server against `limits.CONTROLS`."""
    values = [v for v in values if not isinstance(v, gr.Request)]  # Gradio passes the request after the controls
    if len(values) not in (len(NAMES) - 1, len(NAMES)):
        raise gr.Error(
            f"the settings take {len(NAMES) - 1} or {len(NAMES)} values ({', '.join(NAMES)}); got {len(values)}"
        )
    posted = dict(zip(NAMES, values))
    release = posted.pop(RELEASE_FLAG, False) is True
    negative = posted["negative_prompt"]
    posted["negative_prompt"] = (negative.strip() if isinstance(negative, str) else negative) or None
    settings = GenerationSettings(**posted)
    return release_settings(settings) if release else settings


def release_settings(settings: GenerationSettings) -> GenerationSettings:
    """`settings` with the release's text CFG and shift for its frame count."""
    value = default_guidance(settings.num_frames)
    return replace(settings, **{name: value for name in RELEASE_FIELDS})


def is_release(settings: GenerationSettings) -> bool:
    return release_settings(settings) == settings


def values_from(settings: GenerationSettings) -> list:
    """What the controls show for `settings` ("Release defaults" on when they are the release's)."""
    shown = {**settings.to_dict(), "negative_prompt": settings.negative_prompt or ""}
    shown[RELEASE_FLAG] = is_release(settings)
    return [shown[name] for name in NAMES]


def released_sliders(release: bool, num_frames: int) -> list:
    """Updates of the text-CFG and shift sliders: disabled and showing the release's values while "Release
    defaults" is on, editable otherwise."""
    if release is not True:
        return [gr.update(interactive=True) for _ in RELEASE_FIELDS]
    value = default_guidance(num_frames if isinstance(num_frames, (int, float)) else 1)
    return [gr.update(value=value, interactive=False) for _ in RELEASE_FIELDS]


def settings_endpoint(handler: Callable[..., Any], leading: Sequence[str]) -> Callable[..., Any]:
    """`handler(*leading values, settings, request)` as an endpoint taking the `leading` inputs then every control
    (the signature Gradio and the API read: one named parameter each, "Release defaults" optional)."""

    def endpoint(*args, request: gr.Request = None):
        if args and isinstance(args[-1], gr.Request):  # Gradio passes it in the signature's place
            *args, request = args
        count = len(leading)
        return handler(*args[:count], settings_from(args[count:]), request)

    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter(name, kind) for name in (*leading, *NAMES[:-1])]
    parameters.append(inspect.Parameter(RELEASE_FLAG, kind, default=False))
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
