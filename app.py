"""VINO Studio: `python app.py` (see `python app.py --help`; also runs unchanged on Hugging Face Spaces)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

import spaces  # noqa: F401  first: on a ZeroGPU Space it patches torch's CUDA before anything can touch CUDA

from vino_app.errors import VinoError  # noqa: E402
from vino_app.memory import PROFILES  # noqa: E402
from vino_app.studio import Studio, resolve_model  # noqa: E402
from vino_app.studio.compute import submit  # noqa: E402
from vino_app.studio.models import MODEL_CHOICES, REPO_ROOT, on_zerogpu  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model",
        default=env("VINO_MODEL", "auto"),
        help=f"{' | '.join(MODEL_CHOICES)} | a folder in the released layout (env VINO_MODEL)",
    )
    parser.add_argument(
        "--profile",
        default=env("VINO_PROFILE"),
        choices=sorted(PROFILES),
        help=(
            "memory profile (env VINO_PROFILE; default: zerogpu on ZeroGPU, else from the GPU's memory, "
            "cpu without one)"
        ),
    )
    parser.add_argument(
        "--output-dir",
        default=env("VINO_OUTPUT_DIR", str(Path(tempfile.gettempdir()) / "vino-studio")),
        help="where results are written (env VINO_OUTPUT_DIR)",
    )
    parser.add_argument("--host", default=env("GRADIO_SERVER_NAME", "0.0.0.0" if env("SPACE_ID") else "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("GRADIO_SERVER_PORT", env("PORT", "7860"))))
    parser.add_argument(
        "--queue-size",
        type=int,
        default=int(env("VINO_QUEUE_SIZE", "16")),
        help="requests waiting at most (env VINO_QUEUE_SIZE)",
    )
    parser.add_argument(
        "--max-upload", default=env("VINO_MAX_UPLOAD", "50mb"), help="largest upload (env VINO_MAX_UPLOAD)"
    )
    return parser


def memory_profile(choice: str | None) -> str | None:
    """The memory profile to load: the one asked for; by default 'zerogpu' on a ZeroGPU Space, else None (from the
    GPU's memory)."""
    return choice or ("zerogpu" if on_zerogpu() else None)


def main(argv: list[str] | None = None) -> None:
    """Serve the page at once and load the model behind it (the header says "Loading" until it is ready; a request
    waits for it); a model that fails to load ends the process with its message."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        source = resolve_model(args.model)
        print(f"VINO Studio: loading {source.label} …", flush=True)
        # on ZeroGPU the model is loaded before serving, as its start-up expects
        background = not on_zerogpu()
        studio = Studio.load(source, memory_profile(args.profile), args.output_dir, background=background)
    except VinoError as exc:
        sys.exit(f"error: {exc}")

    submit(studio.calibrate)  # on the compute thread, while the page starts: time estimates from the first request
    from vino_app.ui import API_GUARD, CSS, StudioUI

    demo = StudioUI(studio).build()
    demo.queue(default_concurrency_limit=1, max_size=args.queue_size).launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=args.max_upload,
        allowed_paths=[str(REPO_ROOT / "assets")],
        show_error=True,
        app_kwargs=API_GUARD,
        css=CSS,
        prevent_thread_lock=True,
    )
    try:
        studio.pipe
    except VinoError as exc:
        demo.close()
        sys.exit(f"error: {exc}")
    print(f"VINO Studio: {source.label} loaded (memory profile {studio.profile_name})", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
