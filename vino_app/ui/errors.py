"""How the studio page reports errors: one escaped line without server paths, logged once."""

from __future__ import annotations

import functools
import html
import inspect
import logging
import re
import uuid
from pathlib import Path
from typing import Callable

import gradio as gr
from fastapi.responses import JSONResponse

from ..errors import VinoError

logger = logging.getLogger("vino_app.ui")
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[^\s'\"/<>;,)]+){2,}/?")


def hide_paths(text: str) -> str:
    """`text` with every absolute server path cut to its file name (messages never show the server's folders)."""
    return ABSOLUTE_PATH.sub(lambda match: Path(match.group()).name, text)


def user_errors(fn: Callable) -> Callable:
    """Turn the engine's errors into `gr.Error` with escaped text and no server paths, logged as one line; log
    anything unexpected once, with its traceback and an error id that the short message shown also carries.
    Works for plain functions and generators."""

    def translate(exc: BaseException) -> gr.Error:
        if isinstance(exc, (gr.Error, VinoError)):
            message = hide_paths(exc.message if isinstance(exc, gr.Error) else str(exc))
            logger.info("refused %s: %s", fn.__name__, " ".join(message.split()))
            if isinstance(exc, gr.Error):
                exc.message = message
                return exc
            return gr.Error(html.escape(message), print_exception=False)
        error_id = uuid.uuid4().hex[:8]
        logger.exception("error %s in %s", error_id, fn.__name__)
        return gr.Error(
            f"Something went wrong inside the studio (error {error_id}, {type(exc).__name__}); the details are in "
            "the server log under that id. Your inputs are kept; try again or change a setting.",
            print_exception=False,
        )

    if inspect.isgeneratorfunction(fn) or inspect.isgeneratorfunction(getattr(fn, "__wrapped__", None)):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc) from None

        return generator

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc) from None

    return plain


def unknown_endpoint(request: object, exc: KeyError) -> JSONResponse:
    """Gradio looks an event up by `fn_index` and lets a KeyError out as a 500: answer a clear 404 instead."""
    return JSONResponse(
        {"error": f"no such endpoint ({exc}); the named ones are listed at /gradio_api/info"}, status_code=404
    )


API_GUARD = {"exception_handlers": {KeyError: unknown_endpoint}}  # FastAPI options for `launch(app_kwargs=...)`
