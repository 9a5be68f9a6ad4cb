"""Hugging Face Spaces: the front matter's model links and build-time downloads, the ZeroGPU mode (real `spaces`
package: durations, the platform's cap, pickling across its processes, loading under its CUDA emulation) and the
CPU Space's start on the demo model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from huggingface_hub import SpaceHardware

from tests.hub_mirror import mirror_released_repos, files_taken
from vino_app.hub_files import RELEASED_FILES

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
