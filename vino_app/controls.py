"""Gradio inputs whose server-side check is the studio's own (`studio.limits`): a value a caller posts is refused in
one line naming the field and its allowed range (Gradio's own check names neither the field nor NaN)."""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from .errors import VinoInputError
from .studio.limits import CONTROLS, check_choice

logger = logging.getLogger(__name__)


def _checked_preprocess(self, payload: Any) -> Any:
    """`preprocess` of the components below: the posted value goes to `self.check`; a refusal becomes a `gr.Error`
    and one log line."""
    try:
        return self.check(payload)
    except VinoInputError as exc:
        logger.info("refused input: %s", exc)
        raise gr.Error(html.escape(str(exc)), print_exception=False) from None


class CheckedSlider(gr.Slider):
    """A slider whose posted value goes to `check`. A Gradio template (`is_template`): drawn as a slider, with
    Gradio's own constructor (its config is read from that signature)."""

    is_template = True
    preprocess = _checked_preprocess


class CheckedNumber(gr.Number):
    """A number box whose posted value goes to `check`."""

    is_template = True
    preprocess = _checked_preprocess


class CheckedDropdown(gr.Dropdown):
    """A dropdown whose posted value goes to `check`."""

    is_template = True
    preprocess = _checked_preprocess


def control_slider(name: str, value: float, **kwargs) -> CheckedSlider:
    """A slider over control `name` of `limits.CONTROLS` (range and step from there)."""
    allowed = CONTROLS[name]
    slider = CheckedSlider(allowed.low, allowed.high, value=value, step=allowed.step, **kwargs)
    slider.check = allowed.check
    return slider


def control_number(name: str, value: float, **kwargs) -> CheckedNumber:
    """A whole-number box over control `name` of `limits.CONTROLS`."""
    allowed = CONTROLS[name]
    number = CheckedNumber(value, minimum=allowed.low, maximum=allowed.high, precision=0, **kwargs)
    number.check = allowed.check
    return number


def control_dropdown(field: str, choices: list[str], value: str, **kwargs) -> CheckedDropdown:
    """A dropdown whose posted value must be one of `choices` (refusals name `field`)."""
    dropdown = CheckedDropdown(choices, value=value, **kwargs)
    dropdown.check = lambda payload: check_choice(payload, field, choices)
    return dropdown
