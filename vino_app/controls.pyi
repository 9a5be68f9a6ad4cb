"""Gradio inputs whose server-side check is the studio's own (`studio.limits`): a value a caller posts is refused in
one line naming the field and its allowed range (Gradio's own check names neither the field nor NaN)."""

from __future__ import annotations

import html
import logging
from typing import Any, Callable

import gradio as gr

from .errors import VinoInputError
from .studio.limits import CONTROLS, check_choice

logger = logging.getLogger(__name__)


class _Checked:
    """Mixin: `preprocess` hands the posted value to `self.check`; a refusal becomes a `gr.Error` and one log line."""

    check: Callable[[Any], Any]

    def preprocess(self, payload: Any) -> Any:
        try:
            return self.check(payload)
        except VinoInputError as exc:
            logger.info("refused input: %s", exc)
            raise gr.Error(html.escape(str(exc)), print_exception=False) from None

    def get_block_name(self) -> str:
        """The front end draws the Gradio component this one extends."""
        return type(self).__mro__[2].__name__.lower()

from gradio.events import Dependency

class ControlSlider(gr.Slider):
    """A slider over control `name` of `limits.CONTROLS` (range and step from there). A Gradio template
    (`is_template`): the page draws it as its base component."""

    is_template = True
    preprocess = _checked_preprocess

    def __init__(self, name: str, value: float, **kwargs) -> None:
        allowed = CONTROLS[name]
        self.check = allowed.check
        super().__init__(allowed.low, allowed.high, value=value, step=allowed.step, **kwargs)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class ControlNumber(gr.Number):
    """A number box over control `name` of `limits.CONTROLS`."""

    is_template = True
    preprocess = _checked_preprocess

    def __init__(self, name: str, value: float, **kwargs) -> None:
        allowed = CONTROLS[name]
        self.check = allowed.check
        super().__init__(value, minimum=allowed.low, maximum=allowed.high, precision=0 if allowed.integer else None, **kwargs)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class ControlDropdown(gr.Dropdown):
    """A dropdown whose posted value must be one of `choices` (refusals name `field`)."""

    is_template = True
    preprocess = _checked_preprocess

    def __init__(self, field: str, choices: list[str], value: str, **kwargs) -> None:
        self.check = lambda payload: check_choice(payload, field, choices)
        super().__init__(choices, value=value, **kwargs)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component
class CheckedSlider(gr.Slider):
    """A slider whose posted value goes to `check`. A Gradio template (`is_template`): drawn as a slider, with
    Gradio's own constructor (its config is read from that signature)."""

    is_template = True
    preprocess = _checked_preprocess
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component

    
class CheckedNumber(gr.Number):
    """A number box whose posted value goes to `check`."""

    is_template = True
    preprocess = _checked_preprocess
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component

    
class CheckedDropdown(gr.Dropdown):
    """A dropdown whose posted value goes to `check`."""

    is_template = True
    preprocess = _checked_preprocess
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component

    