"""A session's history as the page keeps it: in the browser, so that a reload loses nothing. What a browser sends
back may be anything, so only entries that name results this studio wrote, and still has, are kept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

HISTORY_LIMIT = 48  # entries kept, the newest
FILE_KEYS = ("media", "sidecar", "bundle")  # the result, its task-file sidecar, the zip with its references
TEXT_KEYS = ("prompt", "caption")


def kept_entries(entries: Any, output_dir: str | os.PathLike) -> list[dict]:
    """The entries of `entries` (a list, else none) whose files all lie in `output_dir` and exist, without
    repeats, at most `HISTORY_LIMIT` (the newest)."""
    if not isinstance(entries, list):
        return []
    root = Path(output_dir).resolve()
    kept: list[dict] = []
    for entry in entries:
        if _written_here(entry, root) and entry not in kept:
            kept.append(entry)
    return kept[-HISTORY_LIMIT:]


def _written_here(entry: Any, root: Path) -> bool:
    if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) for key in (*FILE_KEYS, *TEXT_KEYS)):
        return False
    images, video = entry.get("images"), entry.get("video")
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        return False
    if not (video is None or isinstance(video, str)) or not isinstance(entry.get("settings"), dict):
        return False
    paths = [Path(entry[key]).resolve() for key in FILE_KEYS]
    return all(path.is_relative_to(root) and path.is_file() for path in paths)
