"""The Gradio UI of VINO Studio. It calls only `vino_app.studio` (and through it the engine's public API):
`handlers` answers the events, `layout` lays out the page, `record` carries the generation controls as one record."""

from __future__ import annotations

import gradio as gr

from .errors import API_GUARD, hide_paths, user_errors
from .handlers import Handlers, gallery_paths, grid_values, numbered
from .layout import CSS, build

__all__ = ["API_GUARD", "CSS", "StudioUI", "gallery_paths", "grid_values", "hide_paths", "numbered", "user_errors"]


class StudioUI(Handlers):
    """Event handlers bound to one `Studio`; `build()` lays out the page."""

    def build(self) -> gr.Blocks:
        return build(self)
