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
from vino_app.studio.settings import load_presets, release_values
from vino_app.tasks import TASKS
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
    assert (kwargs["task"], kwargs["base_image"], kwargs["area"], kwargs["aspect"]) == ("ti2i", True, 320 * 320, 0.5)
    video = GenerationSettings(num_frames=9, aspect="16:9").pipeline_kwargs([], (64, 64))
    assert video["aspect"] == pytest.approx(16 / 9)
    assert GenerationSettings.from_dict({"seed": 5, "unknown": 1}).seed == 5


@pytest.mark.parametrize("family", ["released", "world"])
def test_presets_cover_every_task_with_the_release_defaults_or_a_reason(family):
    presets = load_presets(PRESETS_DIR / family, REPO_ROOT)
    assert sorted(p.settings.task for p in presets) == sorted(TASKS)
    for preset in presets:
        task = TASKS[preset.settings.task]
        assert task.fits(len(preset.images), preset.video is not None), preset.key
        release = release_values(task, task.frames)
        given = {k: getattr(preset.settings, k) for k in release}
        assert given == release or len(preset.settings_note) > 20, preset.key
    assert all(not p.settings_note for p in presets) == (family == "released")


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
    cells[3][1] = 7  # cell 4's middle frame differs: the tiles play in time
    sheet = contact_sheet(cells, list("abcd"), 2, fps=24)
    frames = np.stack([sheet.get_frame((i + 0.5) / 24) for i in range(3)]).astype(np.uint8)
    assert sheet.duration == pytest.approx(3 / 24) and frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
    assert frames.shape[1:3] == (2 * (128 + 18 + 4), 2 * (128 + 4))  # 64-px cells enlarged to 128, label and gap
    # the enlarged cell 4 (bottom right, left of the gap) keeps its colour frame by frame
    assert list(frames[:, -10, -10, 0]) == [160, 7, 160]
    # labels are dark text on white above each cell
    assert frames[0, :18].min() < 100 and frames[0, :18].max() == 255
    with pytest.raises(ValueError, match="one label per cell"):
        contact_sheet(cells, ["a"], 2)


def test_model_choice_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="unknown model 'nope'"):
        resolve_model("nope")
    (tmp_path / "qwen").mkdir()
    with pytest.raises(CheckpointError, match="lacks vino.ckpt, hunyuan"):
        resolve_model(str(tmp_path))


def test_stream_reports_every_step_with_previews_for_small_images(studio, media, monkeypatch):
    from vino_app.studio import Progress, StudioResult

    monkeypatch.setattr(studio, "preview_interval_s", 0.0)
    events = list(
        studio.stream(
            Job("Image 1 at dusk", (str(media["wide"]),), None, GenerationSettings(side=64, num_inference_steps=3))
        )
    )
    steps = [e for e in events if isinstance(e, Progress)]
    assert [(e.step, e.total) for e in steps] == [(1, 3), (2, 3), (3, 3)]
    assert all(e.preview is not None and e.preview.shape == (48, 80, 3) for e in steps[:-1])
    assert steps[-1].preview is None  # the result itself follows
    result = events[-1]
    assert isinstance(result, StudioResult) and result.path.exists() and result.bundle.exists()
    video = list(
        studio.stream(Job("a red circle", (), None, GenerationSettings(num_frames=5, side=64, num_inference_steps=2)))
    )
    previews = [e.preview for e in video if isinstance(e, Progress)]
    assert len(previews) == 2 and previews[0].ndim == 3  # a video's first frame
    assert previews[0].shape == video[-1].frames.shape[1:]
    monkeypatch.setattr(studio, "preview_interval_s", 3600.0)
    events = list(studio.stream(Job("a red circle", (), None, GenerationSettings(side=64, num_inference_steps=4))))
    previews = [e.preview is not None for e in events if isinstance(e, Progress)]
    assert previews == [False] * 4  # at most one decode per interval, the first one interval after the start


def test_task_choice_follows_the_attached_references():
    from vino_app.studio.settings import task_fits

    assert task_fits("t2i", 0, False) and not task_fits("t2i", 2, False)
    assert task_fits("ti2i_base", 2, False) and not task_fits("ti2i_base", 1, False)
    assert task_fits("tiv2v", 1, True) and not task_fits("tiv2v", 0, True) and not task_fits("tv2v", 1, True)
    assert task_fits("auto", 3, True) and not task_fits("i2v", 1, True)
    assert task_fits("clone", 1, True) and not task_fits("clone", 0, True)


@pytest.mark.parametrize(
    ("settings", "images", "video", "expected"),
    [
        (GenerationSettings(), 0, False, ("t2i", 1, 50, 5.0, 1.0, 5.0)),
        (GenerationSettings(num_frames=9), 0, False, ("t2v", 9, 50, 7.0, 1.0, 7.0)),
        (GenerationSettings(task="t2v"), 0, False, ("t2v", 85, 50, 7.0, 1.0, 7.0)),
        (GenerationSettings(task="ti2i_base"), 2, False, ("ti2i", 1, 50, 5.0, 3.0, 5.0)),
        (GenerationSettings(task="clone"), 1, True, ("tiv2v", 85, 50, 7.0, 3.0, 7.0)),
        (GenerationSettings(num_frames=5, guidance_scale=2.0, shift=3.0), 1, False, ("i2v", 5, 50, 2.0, 3.0, 3.0)),
    ],
)
def test_release_defaults_fill_what_was_left_unset(settings, images, video, expected):
    kwargs = settings.pipeline_kwargs([(64, 64)] * images, (64, 64) if video else None)
    keys = ("num_frames", "num_inference_steps", "guidance_scale", "image_guidance_scale", "shift")
    assert (settings.task_for(images, video).label, *(kwargs[k] for k in keys)) == expected


def test_a_video_with_default_settings_reaches_the_pipeline_at_7_and_7(studio, monkeypatch):
    seen = {}
    real = studio.pipe.__class__.__call__

    def spy(pipe, prompt, images, video, **kwargs):
        seen.update(kwargs)
        return real(pipe, prompt, images, video, **kwargs)

    monkeypatch.setattr(studio.pipe.__class__, "__call__", spy)
    result = studio.run(
        Job("a red circle moves", (), None, GenerationSettings(num_frames=5, side=64, num_inference_steps=1))
    )
    assert (seen["guidance_scale"], seen["shift"], seen["image_guidance_scale"]) == (7.0, 7.0, 1.0)
    assert result.job.settings.guidance_scale == 7.0  # the saved settings are what ran


def test_old_sidecar_settings_still_load():
    old = {"task": "auto", "num_frames": 1, "side": 640, "aspect": "from references", "num_inference_steps": 50,
           "guidance_scale": 5.0, "image_guidance_scale": 1.0, "shift": 5.0, "negative_prompt": None, "seed": 3}
    assert GenerationSettings.from_dict(old).to_dict() == {**old, "cache": "off", "attention": "native"}


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


def spy_on_pipeline(studio, monkeypatch) -> dict:
    """The keyword arguments of the last `VinoPipeline.__call__`, filled in as the studio calls it."""
    seen = {}
    real = studio.pipe.__class__.__call__

    def spy(pipe, prompt, images=(), video=None, **kwargs):
        seen.update(kwargs)
        return real(pipe, prompt, images, video, **kwargs)

    monkeypatch.setattr(studio.pipe.__class__, "__call__", spy)
    return seen


@pytest.mark.parametrize("mode", ["off", "fast", "faster"])
def test_the_step_cache_setting_reaches_the_pipeline_and_the_saved_settings(studio, monkeypatch, mode):
    seen = spy_on_pipeline(studio, monkeypatch)
    result = studio.run(Job("a red circle", (), None, GenerationSettings(side=64, num_inference_steps=2, cache=mode)))
    assert seen["cache"] == mode
    from vino_app.export import read_settings
    from vino_app.studio.reuse import from_file

    assert read_settings(result.path)["settings"]["studio"]["cache"] == mode
    assert from_file(result.path).settings.cache == mode  # reuse brings it back
    with pytest.raises(VinoInputError, match="cache must be one of off, fast, faster; got 'fastest'"):
        GenerationSettings(cache="fastest")


def test_the_attention_setting_switches_the_backend_and_an_unusable_one_is_refused(studio, monkeypatch):
    from vino_app.studio.studio import usable_attention_backends

    assert studio.attention_backends[0] == "native" and set(studio.attention_backends) <= {"native", "flex"}  # CPU
    assert usable_attention_backends(studio.pipe) == studio.attention_backends
    switched = []
    real = studio.pipe.__class__.set_attention_backend
    monkeypatch.setattr(studio.pipe.__class__, "set_attention_backend",
                        lambda pipe, backend: (switched.append(backend), real(pipe, backend)))
    job = Job("a red circle", (), None, GenerationSettings(side=64, num_inference_steps=1))
    studio.run(job)
    assert switched == []  # native already
    with pytest.raises(VinoInputError, match="attention backend 'flash' needs a CUDA GPU"):
        studio.run(replace(job, settings=replace(job.settings, attention="flash")))
    assert switched == ["flash"] and studio._attention == "native"  # refused: the pipeline stays as it was
    with pytest.raises(VinoInputError, match="attention must be one of"):
        GenerationSettings(attention="warp-drive")


def test_result_files_have_unique_descriptive_names_and_the_zip_not_itself(studio):
    import re
    import zipfile

    job = Job("a red circle", (), None, GenerationSettings(side=64, num_inference_steps=1, seed=42))
    first, second = studio.run(job), studio.run(job)
    for result in (first, second):
        names = [result.path.name, result.sidecar.name, result.bundle.name]
        assert all(re.fullmatch(r"vino-t2i-seed42-\d{8}-\d{6}-[0-9a-f]{4}\.(png|json|zip)", n) for n in names), names
        assert zipfile.ZipFile(result.bundle).namelist().count(result.bundle.name) == 0
        assert not [n for n in zipfile.ZipFile(result.bundle).namelist() if n.endswith(".zip")]
    assert first.path.name != second.path.name and first.bundle.name != second.bundle.name


def write_video_with_audio(path, frames: int = 12, size: tuple[int, int] = (64, 64), seconds: float = 1.0):
    """A grey clip with a 440 Hz tone (AAC) written with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for t in range(frames):
            picture = np.full((size[1], size[0], 3), 60 + 10 * t, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(video.encode())
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(44100 * seconds)) / 44100)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate = 44100
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path


def audio_level(path) -> float:
    """Root mean square of the decoded audio track (0 without one)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return 0.0
        samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(container.streams.audio[0])])
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


@pytest.mark.parametrize("task", ["tv2v", "clone"])
def test_video_edits_keep_the_source_audio(studio, media, tmp_path, task):
    from vino_app.export import read_settings

    source = write_video_with_audio(tmp_path / "with-audio.mp4")
    images = (str(media["square"]),) if task == "clone" else ()
    settings = GenerationSettings(task=task, num_frames=5, side=64, num_inference_steps=1)
    result = studio.run(Job("Turn Video 1 blue", images, str(source), settings))
    assert audio_level(source) > 0.1 and audio_level(result.path) > 0.1  # the tone is carried over
    assert read_settings(result.path)["request"]["caption"] == "Turn Video 1 blue"  # settings still embedded
    silent = studio.run(Job("Turn Video 1 blue", images, str(media["video"]), settings))
    assert audio_level(silent.path) == 0.0  # no track invented


def test_calibration_sets_the_rate_from_measured_runs(studio, monkeypatch):
    import time as clock

    from vino_app.studio.studio import CALIBRATION_STEPS

    fixed, per_step = 0.2, 0.05

    def sleeping(pipe, prompt, *args, num_inference_steps, **kwargs):
        clock.sleep(fixed + per_step * num_inference_steps)

    monkeypatch.setattr(studio.pipe.__class__, "__call__", sleeping)
    before = (studio.throughput, studio.overhead_s)
    try:
        studio.calibrate()
        job = Job("a red circle", (), None, replace(studio.presets[0].settings, num_inference_steps=20))
        assert studio.overhead_s == pytest.approx(fixed, abs=0.08)
        assert studio.estimate(job).seconds == pytest.approx(fixed + 20 * per_step, rel=0.25)
        assert CALIBRATION_STEPS[1] > CALIBRATION_STEPS[0]
        studio._calibrate(job, 2 * (fixed + 20 * per_step))  # a job that took twice the estimate
        assert studio.estimate(job).seconds == pytest.approx(2 * (fixed + 20 * per_step), rel=0.01)
        assert studio.overhead_s == pytest.approx(2 * fixed, abs=0.16)
    finally:
        studio.throughput, studio.overhead_s = before


def test_release_defaults_mean_the_tables_values():
    from vino_app.ui.record import NAMES, OPTIONAL, released_sliders, settings_from, values_from

    posted = dict(task="t2v", num_frames=9, side=64, aspect="1:1", num_inference_steps=3, guidance_scale=2.0,
                  image_guidance_scale=2.0, shift=2.0, seed=1, negative_prompt="", release_defaults=True)
    chosen = settings_from([posted[n] for n in NAMES if n in posted])
    assert chosen.resolve(0, False) == GenerationSettings(
        task="t2v", num_frames=85, side=64, aspect="1:1", num_inference_steps=50, guidance_scale=7.0,
        image_guidance_scale=1.0, shift=7.0, seed=1)
    auto = settings_from([{**posted, "task": "auto", "num_frames": 5}[n] for n in NAMES if n in posted])
    assert [getattr(auto.resolve(1, False), k) for k in ("num_frames", "guidance_scale", "image_guidance_scale")] == [
        5, 7.0, 3.0]  # auto keeps the frame count (it tells an image from a video); image CFG 3 with an image
    image = settings_from([{**posted, "task": "ti2i"}[n] for n in NAMES if n in posted]).resolve(1, False)
    assert (image.num_frames, image.guidance_scale, image.shift, image.image_guidance_scale) == (1, 5.0, 5.0, 3.0)
    off = settings_from([{**posted, "release_defaults": False}[n] for n in NAMES if n in posted])
    assert (off.num_frames, off.guidance_scale, off.num_inference_steps) == (9, 2.0, 3)
    assert off.cache == OPTIONAL["cache"] and off.attention == OPTIONAL["attention"]
    shown = dict(zip(NAMES, values_from(chosen, 0, False)))
    assert (shown["num_frames"], shown["guidance_scale"], shown["release_defaults"]) == (85, 7.0, True)
    assert dict(zip(NAMES, values_from(off, 0, False)))["release_defaults"] is False
    updates = dict(zip(("num_frames", "num_inference_steps", "guidance_scale", "image_guidance_scale", "shift"),
                       released_sliders(True, "i2v", 9, 1, False)))
    assert {k: (u["value"], u["interactive"]) for k, u in updates.items()} == {
        "num_frames": (85, False), "num_inference_steps": (50, False), "guidance_scale": (7.0, False),
        "image_guidance_scale": (3.0, False), "shift": (7.0, False)}
    assert released_sliders(True, "auto", 9, 0, False)[0]["interactive"] is True
    assert all(u["interactive"] for u in released_sliders(False, "t2v", 9, 0, False))


def test_estimated_durations_read_naturally():
    from vino_app.studio.estimate import _duration

    assert [_duration(s) for s in (0.01, 2.34, 240.0)] == ["under 0.1 s", "about 2.3 s", "about 4 min"]


def test_the_history_kept_in_the_browser_names_only_results_this_studio_wrote(tmp_path):
    """The page keeps the history in the browser (localStorage), so it comes back as anything a client sends:
    entries naming files outside the output folder, missing files or wrong types are dropped; repeats once."""
    from vino_app.studio.history import HISTORY_LIMIT, kept_entries

    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "secret.txt").write_text("not the studio's")

    def entry(name: str, folder=out, **changes) -> dict:
        files = {key: folder / f"{name}.{ext}" for key, ext in (("media", "png"), ("sidecar", "json"), ("bundle", "zip"))}
        for path in files.values():
            path.write_bytes(b"x")
        base = {**{k: str(v) for k, v in files.items()}, "prompt": "a red circle", "caption": f"t2i · {name}",
                "images": [], "video": None, "settings": {"seed": 0}}
        return {**base, **changes}

    good = entry("a")
    hostile = [
        entry("b", folder=tmp_path),  # outside the output folder
        {**good, "media": str(tmp_path / "secret.txt")},
        {**good, "bundle": str(out / ".." / "secret.txt")},  # a way out of the folder
        {**good, "sidecar": str(out / "gone.json")},  # no such file
        {**good, "images": "not a list"},
        {**good, "settings": None},
        {**good, "caption": 7},
        "a string",
        None,
    ]
    assert kept_entries([good, *hostile, good], out) == [good]
    assert kept_entries({"media": "x"}, out) == [] and kept_entries(None, out) == []
    many = [entry(f"n{i}") for i in range(HISTORY_LIMIT + 3)]
    assert kept_entries(many, out) == many[-HISTORY_LIMIT:]  # the newest
