"""Several processes on CPU (gloo on 127.0.0.1, 2 processes): a task file shared out by `accelerate launch` or
`torchrun` writes the same bytes as one process; context parallelism (Ulysses, under `torchrun`) matches one
process within the conformance tolerances; ring attention is refused on CPU, for the library reason the worker
reproduces."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vino_app import VinoInputError, get_profile
from vino_app.cli import main

from .parallel_worker import T2I_SEED, cases, cli_flags, run_case

REPO = Path(__file__).resolve().parents[1]
PROCESSES = 2
LAUNCH_TIMEOUT_S = 600
LATENT_TOLERANCE = 1e-4  # tests/test_conformance.py: first-step velocity
PIXEL_TOLERANCE, EXACT_SHARE = 1, 0.99  # tests/test_conformance.py: frames end to end


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a launcher with one thread per process (as the one-process references run), offline, on 127.0.0.1."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), MASTER_ADDR="127.0.0.1")
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


@contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def assert_close_frames(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    diff = np.abs(ours.astype(int) - reference.astype(int))
    assert diff.max() <= PIXEL_TOLERANCE and (diff == 0).mean() > EXACT_SHARE


def write_rows(media: dict[str, Path], path: Path) -> Path:
    """A task file of three rows (t2i, t2v, tv2v): shared out 2 + 1 between two processes."""
    rows = [
        {"index": "a", "task": "t2i", "caption": "A red circle on the left"},
        {"index": "b", "task": "t2v", "caption": "A green triangle moves to the right"},
        {"index": "c", "task": "tv2v", "caption": "Make Video 1 blue", "ref_video_path": str(media["video"])},
    ]
    path.write_text(json.dumps(rows))
    return path


def one_process(task_file: Path, root: Path, out: Path) -> None:
    with one_thread():
        assert main(["generate", "--task-file", str(task_file), "--frames", "5", *cli_flags(root, out)]) == 0


def assert_same_files(one: Path, several: Path) -> None:
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in several.iterdir())
    assert len(names) == 6  # result + sidecar per row
    for name in names:
        assert (one / name).read_bytes() == (several / name).read_bytes(), name


def test_task_file_shared_out_by_accelerate_launch(tiny_root, media, tmp_path):
    task_file = write_rows(media, tmp_path / "tasks.json")
    one_process(task_file, tiny_root, tmp_path / "one")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(PROCESSES)]
    command += ["--num_machines", "1", "--main_process_ip", "127.0.0.1", "--main_process_port", str(free_port())]
    command += ["-m", "vino_app", "generate", "--task-file", str(task_file), "--frames", "5"]
    proc = launch([*command, *cli_flags(tiny_root, tmp_path / "two")], tmp_path)
    assert_same_files(tmp_path / "one", tmp_path / "two")
    assert proc.stdout.count(f"3 tasks written to {tmp_path / 'two'} by {PROCESSES} processes") == 1
    assert sorted(line.split(":")[0] for line in proc.stdout.splitlines() if " -> " in line) == ["a", "b", "c"]


def test_torchrun_context_parallel_and_shared_out_task_file(tiny_root, media, pipe, tmp_path):
    task_file = write_rows(media, tmp_path / "tasks.json")
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(PROCESSES)]
    command += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    command.append(str(REPO / "tests" / "parallel_worker.py"))
    worker_args = [str(tiny_root), str(media["square"]), str(media["wide"]), str(media["video"]), str(task_file)]
    worker_args.append(str(tmp_path))
    printed = launch([*command, *worker_args], tmp_path).stdout.splitlines()
    one_process(task_file, tiny_root, tmp_path / "one")
    assert_same_files(tmp_path / "one", tmp_path / "split")
    assert sorted(line.split(":")[0] for line in printed if f"-> {tmp_path / 'split'}" in line) == ["a", "b", "c"]
    assert sum(f"-> {tmp_path / 'cli' / '0.png'}" in line for line in printed) == 1  # the main process writes
    results = np.load(tmp_path / "results.npz")
    for name, case in cases(str(media["square"]), str(media["video"])).items():
        frames, latents = run_case(pipe, case)
        assert np.abs(results[f"{name}_latents"] - latents).max() <= LATENT_TOLERANCE, name
        assert_close_frames(results[f"{name}_frames"], frames)
        if name == "t2i":
            assert case["seed"] == T2I_SEED
            assert_close_frames(np.asarray(Image.open(tmp_path / "cli" / "0.png"))[None], frames)
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert checks["cli_exit"] == 0 and checks["split_exit"] == 0
    assert checks["degree"] == f"degree must equal the number of processes ({PROCESSES}), got {PROCESSES + 1}"
    assert "'ring' needs a CUDA attention backend" in checks["ours"] and "use 'ulysses'" in checks["ours"]
    assert "does not support return_lse" in checks["library"]
    assert checks["uneven"] == (
        "on CPU, context parallelism needs a latent stream that splits evenly: 47 tokens over 2 processes; "
        "change the size or frames, or use one process"
    )  # diffusers' native backend, the only one on CPU


def test_one_process_refuses_context_parallel(pipe, tiny_root, tmp_path, capsys, monkeypatch):
    with pytest.raises(VinoInputError, match="needs several processes"):
        pipe.enable_context_parallel("ulysses")
    with monkeypatch.context() as patch:
        patch.setattr(pipe, "memory_profile", get_profile("24gb"))
        with pytest.raises(VinoInputError, match="memory profile '24gb' offloads it: use 'full'"):
            pipe.enable_context_parallel("ulysses")
    with pytest.raises(VinoInputError, match="parallel must be one of ulysses, ring, got 'tensor'"):
        pipe.enable_context_parallel("tensor")
    flags = cli_flags(tiny_root, tmp_path)
    assert main(["generate", "--prompt", "x", "--parallel", "ulysses", *flags]) == 2
    assert main(["generate", "--prompt", "x", "--degree", "2", *flags]) == 2
    err = capsys.readouterr().err
    assert "torchrun --nproc_per_node N" in err and "--degree 2 needs --parallel" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())
