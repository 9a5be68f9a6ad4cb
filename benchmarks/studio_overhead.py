"""What a request through the studio costs beyond the engine call at the same settings.

    python -m benchmarks.studio_overhead [--model demo] [--repeats 7] [--steps 20] [--side 64]

One process: the demo model's studio is served by its Gradio app on a free local port; the same t2i request
(64x64, 20 steps, the world preset's CFG and shift) runs as `VinoPipeline.__call__`, as `Studio.run` (checks,
saving, zip), both on the studio's compute thread where the app runs its jobs (`vino_app.studio.compute`), and
through the app's `/generate` endpoint three ways: as the page calls it (`queue/join`, then the event stream until
the job completes, then fetching the result image it shows: the studio's whole cost), and through gradio_client
(the same protocol plus the client library's own round trip, about 0.07 s for any endpoint: the downloads left on
the server, then once more fetching all four), interleaved after one warm-up of each, `--repeats` times. Prints the
median seconds of each and the ratios to the engine call (target: the page's `/generate` <= 1.3x), and the time
estimate the page shows before the first request (after the start-up calibration,
`Studio.calibrate`) against the first `Studio.run` and the median (target: within 2x).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
import time
import uuid
from dataclasses import replace

import httpx
from gradio_client import Client

from vino_app.studio import Job, Studio, resolve_model
from vino_app.studio.compute import compute
from vino_app.ui import API_GUARD, StudioUI
from vino_app.ui.record import OPTIONAL

PROMPT = "On a black background, a small orange circle on the left."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


class PageCall:
    """`api_name` called as the studio's page calls it: join the queue, read the event stream until the job
    completes, then fetch the image it shows (one HTTP connection, as a browser keeps)."""

    def __init__(self, url: str, api_name: str) -> None:
        self.url, self.http = url, httpx.Client(timeout=120)
        config = self.http.get(url + "config").json()
        self.fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)

    def __call__(self, *data) -> None:
        session = uuid.uuid4().hex
        join = {"data": list(data), "fn_index": self.fn_index, "session_hash": session, "event_data": None,
                "trigger_id": None}
        self.http.post(self.url + "gradio_api/queue/join", json=join).raise_for_status()
        completed = None
        with self.http.stream("GET", self.url + "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:") and '"process_completed"' in line:
                    completed = json.loads(line[len("data:"):])
                    break
        if not completed or not completed.get("success"):
            raise RuntimeError(f"/generate failed: {completed}")
        shown = completed["output"]["data"][1]["value"]  # the result image's update
        self.http.get(shown["url"]).raise_for_status()

    def close(self) -> None:
        self.http.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--side", type=int, default=64)
    args = parser.parse_args()

    studio = Studio.load(resolve_model(args.model), "cpu", tempfile.mkdtemp(prefix="vino-overhead-"))
    preset = next(p for p in studio.presets if p.settings.task == "t2i").settings
    settings = replace(preset, task="t2i", side=args.side, num_inference_steps=args.steps, aspect="1:1", seed=0)
    job = Job(PROMPT, (), None, settings)
    kwargs = job.settings.pipeline_kwargs([], None)
    values = [settings.task, 1, args.side, "1:1", args.steps, job.settings.guidance_scale,
              job.settings.image_guidance_scale, job.settings.shift, 0, ""]

    demo = StudioUI(studio).build()
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True, app_kwargs=API_GUARD)
    page = PageCall(url, "generate")
    client = Client(url, verbose=False, download_files=False)  # a page fetches the result, not every download
    downloading = Client(url, verbose=False)
    started = time.perf_counter()
    compute(studio.calibrate)
    calibration = time.perf_counter() - started
    first_estimate = studio.estimate(job).seconds
    paths = {
        "VinoPipeline.__call__": lambda: compute(studio.pipe, PROMPT, **kwargs),
        "Studio.run": lambda: compute(studio.run, job),
        "/generate as the page calls it": lambda: page(PROMPT, [], None, *values, *OPTIONAL.values()),
        "/generate (gradio_client)": lambda: client.predict(PROMPT, [], None, *values, api_name="/generate"),
        "/generate, fetching all 4 files": lambda: downloading.predict(PROMPT, [], None, *values, api_name="/generate"),
    }
    try:
        first_run = timed(paths["Studio.run"])
        for call in paths.values():  # warm-up
            call()
        seconds = {name: [] for name in paths}
        for _ in range(args.repeats):
            for name, call in paths.items():
                seconds[name].append(timed(call))
    finally:
        page.close()
        demo.close()

    engine = statistics.median(seconds["VinoPipeline.__call__"])
    print(f"model {studio.source.label}; t2i {args.side}x{args.side}, {args.steps} steps, {len(kwargs)} engine "
          f"arguments; median of {args.repeats} interleaved runs")
    print("| path | median s | min s | max s | ratio to the engine |")
    print("|---|---|---|---|---|")
    for name, runs in seconds.items():
        median = statistics.median(runs)
        print(f"| {name} | {median:.3f} | {min(runs):.3f} | {max(runs):.3f} | {median / engine:.2f}x |")
    median_run = statistics.median(seconds["Studio.run"])
    print(f"calibration at start-up {calibration:.2f} s; estimate before the first request {first_estimate:.2f} s; "
          f"first Studio.run {first_run:.2f} s (ratio {first_estimate / first_run:.2f}), median Studio.run "
          f"{median_run:.2f} s (ratio {first_estimate / median_run:.2f})")


if __name__ == "__main__":
    main()
