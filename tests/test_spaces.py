"""Hugging Face Spaces: the front matter's model links and build-time downloads, the ZeroGPU mode (real `spaces`
package: durations, the platform's cap, pickling across its processes, loading under its CUDA emulation) and the
CPU Space's start on the demo model."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import SpaceHardware

import app
from tests.hub_mirror import files_taken, mirror_released_repos
from vino_app import VinoPipeline
from vino_app import spaces_support
from vino_app.hub_files import RELEASED_FILES
from vino_app.hub_files import DEFAULT_VLM
from vino_app.spaces_support import MAX_SECONDS_ENV, WORKER_SECONDS, max_duration
from vino_app.studio import ModelSource, Studio, resolve_model
from vino_app.studio.models import released_weights_cached
from vino_app.ui import StudioUI

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict:
    return yaml.safe_load((ROOT / "README.md").read_text().split("---\n")[1])


def test_front_matter_links_the_models_and_suggests_hardware_and_a_start_up_budget():
    config = front_matter()
    assert config["models"] == list(RELEASED_FILES)
    assert config["suggested_hardware"] in {h.value for h in SpaceHardware}
    amount, unit = re.fullmatch(r"(\d+)([mh])", config["startup_duration_timeout"]).groups()
    assert int(amount) * {"m": 60, "h": 3600}[unit] > 30 * 60  # the Hub's default is 30 minutes


def test_preload_from_hub_names_exactly_the_files_the_loader_takes(tiny_root, tmp_path, monkeypatch):
    """The tiny set laid out as the three hub repos (with files the engine must not fetch beside them): loading
    through the repo ids takes exactly the files the front matter preloads, and nothing else."""
    preload = {}
    for entry in front_matter()["preload_from_hub"]:
        repo, files = entry.split(" ")
        preload[repo] = set(files.split(","))
    assert preload == {repo: set(files) for repo, files in RELEASED_FILES.items()}

    from vino_app import VinoPipeline

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshots = mirror_released_repos(tiny_root, tmp_path / "hub")
    with files_taken(snapshots) as taken:
        pipe = VinoPipeline.from_pretrained(memory_profile="cpu")
    assert taken == preload
    assert pipe.transformer.config.num_layers == 1  # it loaded the tiny set, not something else


# ---------------------------------------------------------------------- ZeroGPU: durations, cap, pickling

GPU_ENDPOINTS = {"generate", "cfg_grid", "rewrite"}
# task, frames, side, aspect, steps, text CFG, image CFG, shift, seed, negative prompt
FAST_IMAGE = ["auto", 1, 64, "1:1", 2, 5.0, 1.0, 5.0, 3, ""]


def settings(**changes) -> list:
    names = ["task", "frames", "side", "aspect", "steps", "cfg", "image_cfg", "shift", "seed", "negative"]
    return [changes.get(name, value) for name, value in zip(names, FAST_IMAGE)]


def endpoints(demo) -> dict:
    return {f.api_name: f.fn for f in demo.fns.values() if f.api_name}


def same(a, b) -> bool:
    """Equality through containers, numpy arrays compared by value."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, gr.Request):  # what the endpoints read of it
        return isinstance(b, gr.Request) and a.session_hash == b.session_hash
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def through_pickle(value):
    copy = pickle.loads(pickle.dumps(value))
    assert same(value, copy), f"{value!r} does not survive pickling"
    return copy


def process_boundary_gpu(calls: list):
    """A stand-in for `spaces.GPU` on ZeroGPU, on this machine: the duration is computed from the call's arguments
    first and must stay under the cap; arguments, each result and a raised `gr.Error` cross a pickle round trip, as
    they cross ZeroGPU's processes."""

    def gpu(duration):
        def wrap(fn):
            def crossing(*args, **kwargs):
                seconds = duration(*args, **kwargs)
                assert 0 < seconds <= max_duration()
                calls.append((fn.__name__, seconds))
                args, kwargs = through_pickle((args, kwargs))
                try:
                    if inspect.isgeneratorfunction(fn):
                        return [through_pickle(item) for item in fn(*args, **kwargs)]
                    return through_pickle(fn(*args, **kwargs))
                except gr.Error as exc:
                    raise pickle.loads(pickle.dumps(exc)) from None

            return crossing

        return wrap

    return gpu


@pytest.fixture
def tiny_studio(pipe, tiny_root, tmp_path):
    return Studio(pipe, ModelSource.from_folder(tiny_root, "tiny", "tiny test weights", "world"), tmp_path / "out")


def test_every_gpu_endpoint_is_wrapped_with_a_duration_under_the_cap(tiny_studio):
    fns = endpoints(StudioUI(tiny_studio).build())
    wrapped = {name for name, fn in fns.items() if hasattr(fn, "gpu_duration")}
    assert wrapped == GPU_ENDPOINTS
    inputs = ["A red circle", [], None, *FAST_IMAGE]
    durations = [fns["generate"].gpu_duration(*inputs), fns["cfg_grid"].gpu_duration("3, 5, 7", "1", *inputs),
                 fns["rewrite"].gpu_duration("A red circle", [], None)]
    assert all(WORKER_SECONDS < d <= max_duration() for d in durations)
    assert durations[1] > durations[0]  # three cells ask for more than one


def test_a_request_over_the_cap_is_refused_before_it_starts_with_a_setting_that_fits(tiny_studio, monkeypatch):
    fns = endpoints(StudioUI(tiny_studio).build())
    video = ["A red circle moves right", [], None, "auto", 89, 256, "1:1", 50, 7.0, 1.0, 7.0, 0, ""]
    tiny_studio.throughput = 1.0
    per_call = tiny_studio.estimate(StudioUI(tiny_studio).job(*video)).seconds
    tiny_studio.throughput = per_call / 400  # this request now takes 400 s: over the 300 s cap with the margin
    with pytest.raises(gr.Error, match=r"at most 300 s\. Try (\d+) frames or (\d+) steps\.") as refused:
        fns["generate"].gpu_duration(*video)
    frames, steps = map(int, re.search(r"Try (\d+) frames or (\d+) steps", refused.value.message).groups())
    assert frames < 89 and steps < 50
    for changed in ({4: frames}, {7: steps}):
        cheaper = [changed.get(i, v) for i, v in enumerate(video)]
        assert fns["generate"].gpu_duration(*cheaper) <= max_duration()
    with pytest.raises(gr.Error, match="fewer CFG values"):
        fns["cfg_grid"].gpu_duration("3, 5, 7", "1, 2", *[changed.get(i, v) for i, v in enumerate(video)])
    monkeypatch.setenv(MAX_SECONDS_ENV, "1200")  # a cap raised for PRO visitors lets it through
    assert fns["generate"].gpu_duration(*video) <= 1200
    monkeypatch.setenv(MAX_SECONDS_ENV, "soon")
    with pytest.raises(gr.Error, match="VINO_ZEROGPU_MAX_SECONDS must be a number of seconds above 30; got .*soon"):
        fns["generate"].gpu_duration(*video)


def visitor() -> gr.Request:
    """A request as Gradio hands one to an endpoint (one per call: it pickles only a couple of times)."""
    return gr.Request(username=None, session_hash="visitor-1")


def test_arguments_results_and_errors_of_every_gpu_call_survive_pickling(tiny_studio, media, monkeypatch):
    calls = []
    monkeypatch.setattr(spaces_support.spaces, "GPU", process_boundary_gpu(calls))
    fns = endpoints(StudioUI(tiny_studio).build())
    gallery = [(str(media["square"]), "Image 1")]
    *_, (status, image, _, files, entry) = fns["generate"](
        "Make Image 1 blue", gallery, None, *FAST_IMAGE, request=visitor()
    )
    assert status.startswith("Done: ") and Path(image["value"]).is_file() and entry["settings"]["seed"] == 3
    *_, (status, sheet, _, cells, entries) = fns["cfg_grid"](
        "3, 5", "1", "A red circle", [], None, *FAST_IMAGE, request=visitor()
    )
    assert status.startswith("Done: 2 cells") and len(cells) == len(entries) == 2
    with pytest.raises(gr.Error, match="empty caption"):  # the tiny VLM writes nothing; the visitor is told why
        fns["rewrite"]("A red circle", [], None)
    with pytest.raises(gr.Error, match="Image 2"):  # an engine error reaches the visitor with its own message
        fns["generate"]("Put Image 2 on Image 1", gallery, None, *FAST_IMAGE, request=visitor())
    assert [name for name, _ in calls] == ["generate", "cfg_grid", "rewrite", "generate"]


def test_a_gpu_call_closed_before_its_end_stops_its_job(tiny_studio):
    """On ZeroGPU, Cancel closes the call (Gradio's `cancels`), which closes the endpoint's generator in the
    worker: the job stops after its current step and writes nothing."""
    fns = endpoints(StudioUI(tiny_studio).build())
    call = fns["generate"]("A red circle", [], None, *settings(steps=100, frames=41, side=256), request=visitor())
    assert next(call)[0].endswith(": starting…")  # "Job <id>: ..."
    # the first step shown (updates come at most every 0.25 s)
    assert re.search(r": step \d+ of 100…$", next(call)[0])
    call.close()
    assert tiny_studio.pipe.interrupt
    with tiny_studio._lock:  # the job has ended
        assert not [p for p in tiny_studio.output_dir.iterdir() if p.name != "uploads"]
    *_, (status, *_) = fns["generate"]("A red circle", [], None, *FAST_IMAGE, request=visitor())
    assert status.startswith("Done: ")  # and the studio serves the next call


# ---------------------------------------------------------------------- ZeroGPU: the real `spaces`, CUDA absent

ZEROGPU_RUN = """
import json, sys
from pathlib import Path

import app  # as on a Space: `spaces` first (it patches torch's CUDA), then the engine
import torch
from spaces.zero import torch as zerogpu_torch
from vino_app import VinoPipeline
from vino_app.studio import ModelSource, Studio, resolve_model
from vino_app.studio.models import released_weights_cached
from vino_app.ui import StudioUI

root = Path(sys.argv[1])
pipe = VinoPipeline.from_pretrained(
    root / "vino.ckpt", vlm=str(root / "qwen"), base=str(root / "hunyuan"), memory_profile="zerogpu"
)
studio = Studio(pipe, ModelSource.from_folder(root, "tiny", "tiny test weights", "world"), sys.argv[2])
fns = {f.api_name: f.fn for f in StudioUI(studio).build().fns.values() if f.api_name}
models = (pipe.transformer, pipe.condition_encoder, pipe.vae)
tensors = [t for m in models for t in [*m.parameters(), *m.buffers()]]
print(json.dumps({
    "zerogpu": app.on_zerogpu(),
    "profile": [app.memory_profile(None), app.memory_profile("full")],
    "cuda_available": torch.cuda.is_available(),
    "devices": sorted({t.device.type for t in tensors}),
    "dtypes": sorted({str(p.dtype) for m in models for p in m.parameters()}),
    "registered_bytes": zerogpu_torch.size(),
    "model_bytes": sum(t.numel() * t.element_size() for t in tensors),
    "decorated": sorted(name for name, fn in fns.items() if hasattr(fn, "zerogpu")),
    "auto": app.resolve_model("auto").kind,
    "packed_bytes": zerogpu_torch.pack(),  # what `spaces` does when the app launches
}))
"""


def test_zerogpu_mode_loads_the_tiny_set_under_the_spaces_cuda_emulation_without_cuda(tiny_root, tmp_path):
    """On a ZeroGPU Space the process starts without a GPU and `spaces` emulates CUDA: the zerogpu profile builds
    the models on the CPU and `.to('cuda')` hands every weight to `spaces` to move per call; the GPU endpoints get
    its real decorator. Only the device API (never called here) is missing."""
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9",
           "ZEROGPU_OFFLOAD_DIR": str(tmp_path / "offload"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", ZEROGPU_RUN, str(tiny_root), str(tmp_path / "out")]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["zerogpu"] and seen["cuda_available"] and not torch.cuda.is_available()
    assert seen["profile"] == ["zerogpu", "full"]
    assert seen["devices"] == ["cuda"] and seen["dtypes"] == ["torch.bfloat16"]
    assert seen["registered_bytes"] == seen["model_bytes"] == seen["packed_bytes"] > 0
    assert seen["decorated"] == sorted(GPU_ENDPOINTS)
    assert seen["auto"] == "released"


# ---------------------------------------------------------------------- CPU Space

def test_zerogpu_profile_off_zerogpu_builds_on_the_cpu_and_generates(tiny_root, media, tmp_path):
    """`--profile zerogpu` on a machine without ZeroGPU or CUDA: bf16, built on the CPU, moved to the CPU; the
    studio keeps that profile (no hooks or quantization on ZeroGPU)."""
    pipe = VinoPipeline.from_pretrained(
        tiny_root / "vino.ckpt", vlm=str(tiny_root / "qwen"), base=str(tiny_root / "hunyuan"), memory_profile="zerogpu"
    )
    assert pipe.memory_profile.load_on_cpu and pipe.transformer.dtype == torch.bfloat16
    assert pipe._execution_device.type == "cpu" and not pipe.vae.use_tiling
    out = pipe("Make Image 1 blue", [str(media["square"])], height=64, width=64, num_inference_steps=1)
    assert out.frames.shape == (1, 64, 64, 3)
    ui = StudioUI(Studio(pipe, ModelSource.from_folder(tiny_root, "tiny", "tiny test weights", "world"), tmp_path))
    with pytest.raises(gr.Error, match="stays in the 'zerogpu' memory profile"):
        ui.switch_profile("24gb")
    profile = next(c for c in ui.build().blocks.values() if getattr(c, "label", "") and "Memory profile" in c.label)
    assert profile.value == "zerogpu" and profile.interactive is False


def test_a_cpu_space_starts_on_the_demo_model_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("SPACE_ID", "someone/vino-studio")
    assert app.memory_profile(None) is None  # not ZeroGPU: the profile comes from the hardware
    source = resolve_model("auto")
    assert source.kind == "demo" and not torch.cuda.is_available()
    studio = Studio.load(source, None, tmp_path)  # offline: nothing is downloaded
    header = StudioUI(studio).header()
    assert studio.profile_name == "cpu" and "world demo model" in header
    assert "This Space runs on CPU hardware, so it serves the demo model" in header
    monkeypatch.delenv("SPACE_ID")
    assert "CPU hardware" not in StudioUI(studio).header()  # not on a Space: no such note


def test_the_released_weights_count_as_cached_only_with_every_file_the_loader_takes(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshots = mirror_released_repos(tiny_root, tmp_path / "hub")
    assert released_weights_cached()
    (snapshots[DEFAULT_VLM] / "model-00002-of-00002.safetensors").unlink()
    assert not released_weights_cached()
