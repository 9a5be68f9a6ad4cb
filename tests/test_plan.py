"""The memory plan on paper: full-size released configs on the meta device, every profile under its name."""

import pytest

from vino_app.cli import main
from vino_app.memory import PROFILES
from vino_app.plan import GIB, MARGIN, plan_request, released_footprints


def test_released_sizes_match_the_reference_on_paper():
    f = released_footprints()
    assert f["transformer"].params == pytest.approx(12.82e9, rel=1e-3)
    assert f["vlm"].params == pytest.approx(4.83e9, rel=1e-3)
    for name, expected in (("transformer", (23.9, 6.7, 11.9)), ("vlm", (9.0, 3.6, 5.2))):
        got = [f[name].bytes[mode] / GIB for mode in (None, "nf4", "int8")]
        assert got == pytest.approx(expected, abs=0.1)


def test_every_gpu_profile_fits_its_name_at_480x848x85():
    for name, profile in PROFILES.items():
        plan = plan_request(profile, 480, 848, 85)
        assert plan.tokens == 22 * 30 * 53 + 300  # 21+1 latent frames of 30x53 patches, 300 text tokens
        if plan.budget_gib:
            assert plan.peak_gib <= MARGIN * plan.budget_gib, plan.table()
    full = plan_request(PROFILES["full"], 480, 848, 85)
    assert 30 < full.peak_gib < 40  # default_profile_name picks full from 40 GiB of GPU memory
    untiled = plan_request(PROFILES["full"].__class__("untiled", "", vae_tiling=False), 480, 848, 85)
    assert untiled.activations_gib["VAE decode"] > 20  # why every profile tiles the VAE at this size


def test_plan_command_prints_the_table(capsys):
    assert main(["plan", "--profile", "24gb", "--height", "480", "--width", "848", "--frames", "85"]) == 0
    out = capsys.readouterr().out
    assert "profile 24gb on cuda: 35,280 MMDiT tokens" in out and "expected peak" in out and "MMDiT step" in out


def test_studio_memory_estimate_is_the_plan():
    from vino_app.studio.estimate import ModelSize, estimate_cost
    from vino_app.studio.settings import GenerationSettings

    released = released_footprints()
    model = ModelSize(released["transformer"].params, released, 60, 3072, 256, 16, 4, 32 * 32)
    for name in ("full", "24gb", "8gb"):
        estimate = estimate_cost(GenerationSettings(side=640), 44, 0, None, model, PROFILES[name], 80.0, 1e14)
        assert estimate.memory_gib == pytest.approx(plan_request(PROFILES[name], 640, 640, 1, text_tokens=300).peak_gib)
