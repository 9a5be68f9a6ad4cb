"""Memory of checking a reference video: the container probe against decoding every frame, and the VLM's reader.

    python -m benchmarks.bench_video_check [--frames 2880 --side 128]

Writes a small H.264 clip of `--frames` frames (`--side` px square, 24 fps), then, each in a fresh process, runs
`media.probe_video` (what the studio does to check an upload: refused here when over its caps, which is the
point), `media.read_reference_video` (a request's one decoding pass: the first 85 frames scaled for 480x848 and
the VLM's 8 sampled frames) and the VLM reader alone (`media._read_video_pyav`); prints the peak resident memory
each added (MiB) and seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from vino_app.errors import MediaError
from vino_app.export import save_mp4
from vino_app.media import _read_video_pyav, probe_video, read_reference_video

REQUEST_FRAMES, REQUEST_AREA = 85, 480 * 848


def _measure(name: str, path: str, out) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    outcome = "ok"
    try:
        if name == "probe_video":
            probe_video(path)
        elif name == "reference_reader":
            read_reference_video(path, REQUEST_FRAMES, REQUEST_AREA, {"nframes": 8})
        else:
            _read_video_pyav({"video": path, "nframes": 8})
    except MediaError as exc:
        outcome = f"refused: {exc}"
    seconds = time.perf_counter() - start
    out.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, seconds, outcome))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=2880)
    parser.add_argument("--side", type=int, default=128)
    args = parser.parse_args(argv)
    path = Path(tempfile.mkdtemp()) / "clip.mp4"
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (1, args.side, args.side, 3), dtype=np.uint8), args.frames, axis=0)
    save_mp4(frames, path)
    print(f"clip: {args.frames} frames of {args.side}x{args.side}, {path.stat().st_size / 1024:.0f} KiB on disk")
    print("| check | peak RSS added (MiB) | seconds | outcome |\n|---|---|---|---|")
    context = multiprocessing.get_context("spawn")
    for name in ("probe_video", "reference_reader", "vlm_reader"):
        out = context.Queue()
        process = context.Process(target=_measure, args=(name, str(path), out))
        process.start()
        kib, seconds, outcome = out.get()
        process.join()
        print(f"| {name} | {kib / 1024:.0f} | {seconds:.2f} | {outcome[:70]} |")


if __name__ == "__main__":
    main()
