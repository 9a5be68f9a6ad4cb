"""`python -m benchmarks.gpu_check --scale tiny` runs on the CPU: the table a GPU run prints, from the same code."""

import json

from benchmarks import gpu_check


def test_gpu_check_runs_at_tiny_scale(tmp_path, capsys):
    profiles = ["--profiles", "full", "16gb", "8gb"]
    code = gpu_check.main(["--scale", "tiny", *profiles, "--steps", "1", "--json", str(tmp_path / "rows.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "| profile | load s | host GiB loading | peak GiB | s/step 64x64x1 | s/step 64x64x5 |" in out
    assert "| first-step rel. error vs full |" in out
    rows = {r["profile"]: r for r in json.loads((tmp_path / "rows.json").read_text())}
    assert rows["full"]["velocity_rel_error"] == 0.0 and rows["8gb"]["velocity_rel_error"] == 0.0
    assert 0.0 < rows["16gb"]["velocity_rel_error"] < 0.15  # NF4 against bf16
    assert all(r["finite"] and r["load_s"] > 0 and r["image_s_per_step"] > 0 for r in rows.values())
    assert all(0 <= r["load_host_gib"] < 1 for r in rows.values())  # a few MB of tiny weights
