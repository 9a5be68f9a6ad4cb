"""The UI-free studio layer: slots and renumbering, settings, presets, estimates, out-of-memory retry, sheets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from vino_app import CheckpointError, FrameCountError, VinoInputError
from vino_app.studio import GenerationSettings, Job, ModelSource, OutOfMemory, Studio, resolve_model
from vino_app.studio.models import PRESETS_DIR, REPO_ROOT
from vino_app.studio.references import move, remove, renumber_images
from vino_app.studio.reuse import from_entry
from vino_app.studio.settings import load_presets
from vino_app.studio.sheet import contact_sheet
from vino_app.studio.studio import RunningJob, cheaper_settings


@pytest.fixture(scope="module")
def studio(pipe, tiny_root, tmp_path_factory):
    return Studio(pipe, ModelSource.from_folder(tiny_root, "tiny", "tiny", "world"), tmp_path_factory.mktemp("out"))


def test_renumbering_keeps_names_on_their_pictures():
    paths, order = move(["a", "b", "c"], 0, 2)
    assert paths == ["b", "c", "a"] and order == [2, 3, 1]
    assert renumber_images("Image 1 wears the hat of image_2; Video 1 stays; IMAGE3 too", order) == (
        "Image 3 wears the hat of Image 1; Video 1 stays; Image 2 too"
    )
    paths, order = remove(["a", "b", "c"], 1)
    assert paths == ["a", "c"]
    assert renumber_images("Image 2 beside Image 3", order) == "the removed image beside Image 2"


def test_settings_validate_and_resolve_aspect():
    with pytest.raises(FrameCountError, match="5 or 9"):
        GenerationSettings(num_frames=7)
    with pytest.raises(VinoInputError, match="aspect"):
        GenerationSettings(aspect="2:1")
    kwargs = GenerationSettings(task="ti2i_base", side=320).pipeline_kwargs([(300, 200), (100, 200)], None)
    assert (kwargs["task"], kwargs["base_image"], kwargs["area"], kwargs["aspect"]) == (None, True, 320 * 320, 0.5)
    video = GenerationSettings(num_frames=9, aspect="16:9").pipeline_kwargs([], (64, 64))
    assert video["aspect"] == pytest.approx(16 / 9)
    assert GenerationSettings.from_dict({"seed": 5, "unknown": 1}).seed == 5


@pytest.mark.parametrize("family", ["released", "world"])
def test_presets_cover_every_task_with_existing_examples(family):
    presets = load_presets(PRESETS_DIR / family, REPO_ROOT)
    tasks = {p.settings.task for p in presets}
    assert {"t2i", "t2v", "i2v", "ti2v", "ti2i", "ti2i_base", "tv2v", "tiv2v"} <= tasks
    for preset in presets:
        image_tasks = preset.settings.task in ("t2i", "ti2i", "ti2i_base")
        assert (preset.settings.num_frames == 1) == image_tasks, preset.key
        assert preset.settings.task not in ("tv2v", "tiv2v") or preset.video, preset.key


def test_estimate_grows_with_work_and_suggests_a_cheaper_setting(studio):
    image = Job("a red circle", (), None, GenerationSettings(side=256, num_inference_steps=10))
    small, large = studio.estimate(image), studio.estimate(replace(image, settings=replace(image.settings, side=512)))
    assert large.latent_tokens == 4 * small.latent_tokens and large.seconds > small.seconds
    assert small.passes_per_step == 2
    assert studio.estimate(replace(image, settings=replace(image.settings, guidance_scale=1.0))).passes_per_step == 1
    video = studio.estimate(Job("a red circle", (), None, GenerationSettings(num_frames=89, side=1024)))
    tight = replace(video, available_gib=video.memory_gib / 2)
    assert not tight.fits and "Will probably not fit" in tight.summary()


def test_cheaper_settings_lower_frames_then_area():
    assert cheaper_settings(GenerationSettings(num_frames=85)).num_frames == 41
    assert cheaper_settings(GenerationSettings(num_frames=1, side=640)).side == 448
    assert cheaper_settings(GenerationSettings(num_frames=1, side=256)) is None


def test_out_of_memory_retries_at_a_lower_setting(studio, monkeypatch):
    calls = []
    real = studio.pipe.__class__.__call__

    def flaky(pipe, prompt, images, video, **kwargs):
        calls.append(kwargs["area"])
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(pipe, prompt, images, video, **kwargs)

    monkeypatch.setattr(studio.pipe.__class__, "__call__", flaky)
    result = studio.run(Job("a red circle", (), None, GenerationSettings(side=384, num_inference_steps=1)))
    assert calls == [384 * 384, 256 * 256] and "ran at area 256x256 instead" in result.note
    assert result.frames.shape[1:3] == (256, 256)

    def always(pipe, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(studio.pipe.__class__, "__call__", always)
    with pytest.raises(OutOfMemory, match="ran out of memory at area 384x384 and again at area 256x256"):
        studio.run(Job("a red circle", (), None, GenerationSettings(side=384, num_inference_steps=1)))


def test_cancel_belongs_to_the_job_owner_or_its_handle(studio):
    assert studio.cancel("someone") is False  # nothing runs
    studio._running = RunningJob("job-alice", "alice")
    try:
        assert studio.cancel("bob") is False and not studio.pipe.interrupt
        assert studio.cancel(None) is False and not studio.pipe.interrupt  # no session, no handle: nothing
        assert studio.cancel(None, "job-bob") is False and not studio.pipe.interrupt
        assert studio.cancel(None, "job-alice") is True and studio.pipe.interrupt
        studio.pipe._interrupt = False
        assert studio.cancel("alice") is True and studio.pipe.interrupt
    finally:
        studio._running, studio.pipe._interrupt = None, False


def test_contact_sheet_tiles_and_labels():
    cells = [np.full((3, 64, 64, 3), 40 * i, np.uint8) for i in range(1, 5)]
    sheet = contact_sheet(cells, ["a", "b", "c", "d"], columns=2)
    assert sheet.shape[0] == 3 and sheet.shape[1] % 2 == 0 and sheet.shape[2] % 2 == 0
    # the enlarged cell 4 (bottom right) keeps its colour; labels are dark text on white above each cell
    assert (sheet[:, -10, -10] == 160).all()
    assert sheet[0, :18].min() < 100 and sheet[0, :18].max() == 255


def test_model_choice_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="unknown model 'nope'"):
        resolve_model("nope")
    (tmp_path / "qwen").mkdir()
    with pytest.raises(CheckpointError, match="lacks vino.ckpt, hunyuan"):
        resolve_model(str(tmp_path))


def test_stream_reports_every_step_with_previews_for_small_images(studio, media):
    from vino_app.studio import Progress, StudioResult

    events = list(studio.stream(Job("Image 1 at dusk", (str(media["wide"]),), None, GenerationSettings(side=64, num_inference_steps=3))))
    steps = [e for e in events if isinstance(e, Progress)]
    assert [(e.step, e.total) for e in steps] == [(1, 3), (2, 3), (3, 3)]
    assert all(e.preview is not None and e.preview.shape == (48, 80, 3) for e in steps)
    result = events[-1]
    assert isinstance(result, StudioResult) and result.path.exists() and result.bundle.exists()
    video = list(studio.stream(Job("a red circle", (), None, GenerationSettings(num_frames=5, side=64, num_inference_steps=2))))
    previews = [e.preview for e in video if isinstance(e, Progress)]
    assert len(previews) == 2 and all(p is not None and p.ndim == 3 for p in previews)  # a video's first frame
    assert previews[-1].shape == video[-1].frames.shape[1:]


def test_task_choice_follows_the_attached_references():
    from vino_app.studio.settings import task_fits

    assert task_fits("t2i", 0, False) and not task_fits("t2i", 2, False)
    assert task_fits("ti2i_base", 2, False) and not task_fits("ti2i_base", 1, False)
    assert task_fits("tiv2v", 1, True) and not task_fits("tiv2v", 0, True) and not task_fits("tv2v", 1, True)
    assert task_fits("auto", 3, True) and not task_fits("i2v", 1, True)


def test_auto_model_without_a_gpu_is_the_shipped_demo_model():
    source = resolve_model("auto")
    assert (source.kind, source.family) == ("demo", "world") and "low-quality" in source.label


def test_history_reuse_reattaches_only_files_in_owned_folders(tmp_path):
    owned = tmp_path / "out"
    mine = owned / "ref.png"
    mine.parent.mkdir()
    Image.new("RGB", (8, 8)).save(mine)
    (owned / "escape.py").symlink_to(REPO_ROOT / "app.py")  # a link inside an owned folder to a file outside it
    entry = {"prompt": "x", "images": [str(mine), str(REPO_ROOT / "app.py"), str(owned / "escape.py")],
             "video": "/etc/passwd", "settings": {"seed": 3}}
    reused = from_entry(entry, [owned])
    assert reused.images == (str(mine),) and reused.video is None and reused.settings.seed == 3
    assert reused.attach_again == ("app.py", "escape.py", "passwd") and "attach the references again" in reused.note()
    with pytest.raises(VinoInputError, match="steps must be a whole number from 1 to 100"):
        from_entry({**entry, "settings": {"num_inference_steps": 10**12}}, [owned])
