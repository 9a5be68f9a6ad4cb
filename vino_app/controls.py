"""Gradio inputs whose server-side check is the studio's own (`studio.limits`): a value a caller posts is refused in
one line naming the field and its allowed range (Gradio's own check names neither the field nor NaN).

The components stay Gradio's own classes (a subclass would make Gradio write a `.pyi` stub beside this file); each
instance's `preprocess` is replaced by the check."""

from __future__ import annotations

import html
import logging
from typing import Any, Callable, TypeVar

import gradio as gr

from .errors import VinoInputError
from .studio.limits import CONTROLS, check_choice

logger = logging.getLogger(__name__)
C = TypeVar("C", bound=gr.components.Component)


def checked(component: C, check: Callable[[Any], Any]) -> C:
    """`component` whose posted value goes to `check` (instead of its own `preprocess`); a refusal becomes a
    `gr.Error` and one log line."""

    def preprocess(payload: Any) -> Any:
        try:
            return check(payload)
        except VinoInputError as exc:
            logger.info("refused input: %s", exc)
            raise gr.Error(html.escape(str(exc)), print_exception=False) from None

    component.preprocess = preprocess
    return component


def control_slider(name: str, value: float, **kwargs) -> gr.Slider:
    """A slider over control `name` of `limits.CONTROLS` (range and step from there)."""
    allowed = CONTROLS[name]
    return checked(gr.Slider(allowed.low, allowed.high, value=value, step=allowed.step, **kwargs), allowed.check)


def control_number(name: str, value: float, **kwargs) -> gr.Number:
    """A whole-number box over control `name` of `limits.CONTROLS`."""
    allowed = CONTROLS[name]
    return checked(gr.Number(value, minimum=allowed.low, maximum=allowed.high, precision=0, **kwargs), allowed.check)


def control_dropdown(field: str, choices: list[str], value: str, **kwargs) -> gr.Dropdown:
    """A dropdown whose posted value must be one of `choices` (refusals name `field`)."""
    return checked(gr.Dropdown(choices, value=value, **kwargs), lambda payload: check_choice(payload, field, choices))
