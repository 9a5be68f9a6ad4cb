"""Cold start of the studio: `python app.py` to its first page, and to the model being ready.

    python -m benchmarks.cold_start [--model demo] [--repeats 3]

Each repeat starts a fresh `python app.py --model MODEL --port P` and polls `http://127.0.0.1:P/` until the page
is served (first page), then reads the process's output until it prints that the model is loaded. Also times
`import vino_app` and `import vino_app.ui` in fresh interpreters. Prints the median of each (seconds); the last line
reads `first_page_s=X model_ready_s=Y` (target: first page <= 6 s on the idle 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.05
TIMEOUT_SECONDS = 300
LOADED_MARK = "loaded (memory profile"  # what app.py prints once the model is ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def import_seconds(module: str) -> float:
    """Wall seconds of `python -c "import MODULE"` in a fresh interpreter (interpreter start included)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def app_start(model: str) -> tuple[float, float]:
    """(seconds to the first page, seconds to the model being ready) of one fresh `python app.py`."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as out:
        env["GRADIO_TEMP_DIR"] = out
        command = [sys.executable, "app.py", "--model", model, "--port", str(port), "--output-dir", out]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)  # fmt: skip
        try:
            first_page = _wait_for_page(port, started, process)
            for line in process.stdout:
                if LOADED_MARK in line:
                    return first_page, time.perf_counter() - started
            raise RuntimeError(f"app.py ended before the model was loaded (exit {process.wait()})")
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_for_page(port: int, started: float, process: subprocess.Popen) -> float:
    while time.perf_counter() - started < TIMEOUT_SECONDS:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}: {process.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                if response.status == 200 and b"<html" in response.read(4096).lower():
                    return time.perf_counter() - started
        except OSError:
            time.sleep(POLL_SECONDS)
    raise RuntimeError(f"no page on port {port} after {TIMEOUT_SECONDS} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo", help="app.py --model (demo, tiny, a folder)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    imports = {name: [] for name in ("vino_app", "vino_app.ui")}
    pages, ready = [], []
    for _ in range(args.repeats):  # interleaved, so a slow spell of the machine touches every figure alike
        for name, times in imports.items():
            times.append(import_seconds(name))
        page, loaded = app_start(args.model)
        pages.append(page)
        ready.append(loaded)
    print(f"n={args.repeats} model={args.model} (median seconds, fresh processes)")
    for name, times in imports.items():
        print(f"import {name}: {statistics.median(times):.2f}")
    print(f"app.py first page: {statistics.median(pages):.2f}  (all: {', '.join(f'{t:.2f}' for t in pages)})")
    print(f"app.py model ready: {statistics.median(ready):.2f}  (all: {', '.join(f'{t:.2f}' for t in ready)})")
    print(f"first_page_s={statistics.median(pages):.2f} model_ready_s={statistics.median(ready):.2f}")


if __name__ == "__main__":
    main()
