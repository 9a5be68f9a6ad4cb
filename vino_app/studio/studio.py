"""The studio session engine: one loaded pipeline, jobs run one at a time with progress, previews, cancel, CFG
grids, out-of-memory retries, and results written with their settings. No UI code here."""

from __future__ import annotations

import gc
import math
import os
import queue
import shutil
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch

from ..errors import GenerationCancelled, VinoError, VinoInputError
from ..export import save_png, save_with_sidecar, write_clip
from ..media import load_image, probe_video
from ..memory import default_profile_name, get_profile
from ..prompt import ReferenceReport, chat_text, check_references
from ..plan import footprints_from_configs
from ..tasks import TaskSpec
from .compute import compute, submit
from .estimate import DEFAULT_THROUGHPUT, CostEstimate, ModelSize, estimate_cost
from .models import PRESETS_DIR, REPO_ROOT, ModelSource
from .limits import MAX_CFG_GRID_CELLS, check_counts, check_text
from .settings import DEFAULT_ATTENTION, GenerationSettings, Preset, load_presets
from .sheet import contact_sheet

if TYPE_CHECKING:
    from ..pipeline import VinoPipeline

PREVIEW_MAX_PIXELS = 512 * 512
PREVIEW_INTERVAL_S = 0.5  # at most one preview decode (and one image sent to the page) per this many seconds
CALIBRATION_STEPS = (2, 6)  # the start-up runs that measure this machine: seconds per step and fixed seconds
CALIBRATION_REPEATS = 2  # each timed this often, the fastest kept (a busy machine only ever slows a run down)
StepCallback = Callable[[int, int, "np.ndarray | None"], None]  # (step done, total steps, preview [H, W, 3] or None)


@dataclass(frozen=True)
class Job:
    """One request: the instruction, the references in slot order ("Image 1".., "Video 1") and the settings."""

    prompt: str
    images: tuple[str, ...]
    video: str | None
    settings: GenerationSettings

    def __post_init__(self) -> None:
        """Checks the instruction and reference counts; the settings' release defaults are filled in for the task
        the references make (so what runs, is estimated and is saved is the same)."""
        check_text(self.prompt, "instruction")
        check_counts(len(self.images), int(self.video is not None))
        object.__setattr__(self, "settings", self.settings.resolve(len(self.images), self.video is not None))


@dataclass(frozen=True)
class StudioResult:
    """A finished generation: the file (PNG or MP4, settings embedded), its task-file sidecar and a zip with both
    and the references; `frames` uint8 `[F, H, W, 3]`; `note` says when it ran at a lower setting."""

    job: Job
    task: str
    frames: np.ndarray
    path: Path
    sidecar: Path
    bundle: Path
    seconds: float
    label: str = ""
    note: str | None = None

    @property
    def is_video(self) -> bool:
        return self.frames.shape[0] > 1


@dataclass(frozen=True)
class Progress:
    """A streaming update: `step` of `total` done, with an optional preview `[H, W, 3]`; `cell` in a CFG grid."""

    step: int
    total: int
    preview: np.ndarray | None = None
    cell: str = ""


@dataclass
class RunningJob:
    """The job being generated: its id (the handle a caller without a session cancels it by), who started it
    (a session id, or None), and whether a cancel was asked."""

    id: str
    owner: str | None
    cancelled: bool = False


def new_job_id() -> str:
    """A fresh, unguessable job handle (12 hex digits)."""
    return uuid.uuid4().hex[:12]


class OutOfMemory(VinoError):
    """The GPU ran out of memory even at the lower setting tried."""


def model_size(pipe: VinoPipeline) -> ModelSize:
    """Parameter counts and token geometry of a loaded pipeline, for cost estimates."""
    config = pipe.transformer.config
    vision = pipe.processor.image_processor
    footprints = footprints_from_configs(config, pipe.condition_encoder.mm_encoder.config, pipe.vae.config)
    return ModelSize(
        transformer_params=footprints["transformer"].params,
        footprints=footprints,
        num_layers=config.num_layers + config.num_single_layers,
        inner_dim=config.num_attention_heads * config.attention_head_dim,
        num_queries=pipe.condition_encoder.num_queries,
        spatial_compression=pipe.vae.config.spatial_compression_ratio * config.patch_size,
        temporal_compression=pipe.vae.config.temporal_compression_ratio * config.patch_size_t,
        vlm_pixels_per_token=(vision.patch_size * vision.merge_size) ** 2,
    )


def available_memory_gib() -> float:
    """Total memory of the GPU the pipeline runs on, or of the machine's RAM without one."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory / 1024**3
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def cheaper_settings(settings: GenerationSettings) -> GenerationSettings | None:
    """A setting that needs less memory: half the frames (kept 4k+1) for videos, else a smaller area; None at the
    floor."""
    if settings.num_frames > 5:
        return replace(settings, num_frames=((settings.num_frames - 1) // 2 // 4) * 4 + 1)
    if settings.side > 256:
        return replace(settings, side=max(256, int(settings.side / math.sqrt(2)) // 16 * 16))
    return None


class Studio:
    """A loaded VINO pipeline and what the studio does with it. Thread-safe: jobs run one at a time."""

    def __init__(
        self, pipe: VinoPipeline | Future[VinoPipeline], source: ModelSource, output_dir: str | os.PathLike
    ) -> None:
        """`pipe`: the loaded pipeline, or a future of it (see `load(background=True)`); every use of `pipe` waits
        for it and re-raises a failed load."""
        self._pipe = pipe if isinstance(pipe, Future) else _resolved(pipe)
        self._loading_profile: str | None = None  # the profile being loaded in the background
        self.source = source
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.presets: list[Preset] = load_presets(PRESETS_DIR / source.family, REPO_ROOT)
        self._model_size: ModelSize | None = None
        self._throughput: float | None = None
        self.overhead_s = 0.0  # seconds a request costs besides its steps (encoders, decoding, saving)
        self.preview_interval_s = PREVIEW_INTERVAL_S
        self._attention_backends: list[str] | None = None
        self._attention = DEFAULT_ATTENTION
        self._lock = threading.Lock()
        self._running: RunningJob | None = None
        self._abandoned: set[str] = set()  # ids of jobs whose stream closed before they ended

    @classmethod
    def load(
        cls, source: ModelSource, memory_profile: str | None, output_dir: str | os.PathLike, background: bool = False
    ) -> "Studio":
        """The studio of `source` under `memory_profile`; with `background` it returns at once and the model loads
        on the compute thread (`compute`; the page can be served meanwhile: `ready` says when it is loaded)."""
        if not background:
            return cls(compute(_load_pipeline, source, memory_profile), source, output_dir)
        studio = cls(submit(_load_pipeline, source, memory_profile), source, output_dir)  # its future holds an error
        studio._loading_profile = get_profile(memory_profile or default_profile_name()).name
        return studio

    @property
    def pipe(self) -> VinoPipeline:
        """The pipeline (waits while it loads; raises what made its load fail)."""
        return self._pipe.result()

    @property
    def ready(self) -> bool:
        """Whether the model has finished loading (successfully or not)."""
        return self._pipe.done()

    @property
    def model_size(self) -> ModelSize:
        if self._model_size is None:
            self._model_size = model_size(self.pipe)
        return self._model_size

    @property
    def throughput(self) -> float:
        """MMDiT FLOP/s the time estimate assumes: the device's guess until a run measures it."""
        if self._throughput is None:
            self._throughput = DEFAULT_THROUGHPUT["cuda" if self.pipe._execution_device.type == "cuda" else "cpu"]
        return self._throughput

    @throughput.setter
    def throughput(self, value: float) -> None:
        self._throughput = value

    @property
    def attention_backends(self) -> list[str]:
        """The attention backends this machine runs for the loaded model (`usable_attention_backends`; waits for
        the model)."""
        if self._attention_backends is None:
            self._attention_backends = compute(usable_attention_backends, self.pipe)
        return self._attention_backends

    def switch_profile(self, memory_profile: str) -> None:
        """Reload the model under another memory profile (waits for a running job; the old copy is freed first)."""
        if memory_profile == self.profile_name:
            return
        get_profile(memory_profile)
        compute(self._reload, memory_profile)

    def _reload(self, memory_profile: str) -> None:
        with self._lock:
            previous = self.profile_name
            self._pipe = _resolved(None)
            self._free_memory()
            try:
                self._pipe = _resolved(_load_pipeline(self.source, memory_profile))
            except Exception:
                self._pipe = _resolved(_load_pipeline(self.source, previous))  # keep serving as before
                raise
            finally:
                self._attention, self._attention_backends = DEFAULT_ATTENTION, None
            self._model_size = None

    @property
    def profile_name(self) -> str:
        """The memory profile loaded (or being loaded: this does not wait)."""
        if not self.ready or self._pipe.exception() is not None:
            return self._loading_profile
        return self.pipe.memory_profile.name

    def preset(self, key: str) -> Preset:
        for preset in self.presets:
            if preset.key == key:
                return preset
        raise VinoInputError(f"unknown preset '{key}'; choose one of {', '.join(p.key for p in self.presets)}")

    # ------------------------------------------------------------------ before running

    def check(self, prompt: str, num_images: int, num_videos: int) -> ReferenceReport:
        """The instruction checked against the attached references (errors block a run, warnings do not)."""
        check_counts(num_images, num_videos)
        return check_references(check_text(prompt, "instruction"), num_images, num_videos)

    def estimate(self, job: Job, video_frames: int | None = None) -> CostEstimate:
        """The cost of `job` on this machine under the loaded memory profile."""
        text = chat_text(job.prompt, len(job.images), job.video is not None)
        prompt_tokens = len(self.pipe.processor.tokenizer(text)["input_ids"])
        if job.video is not None and video_frames is None:
            video_frames = job.settings.num_frames
        return estimate_cost(
            job.settings,
            prompt_tokens,
            len(job.images),
            video_frames,
            self.model_size,
            get_profile(self.profile_name),
            available_memory_gib(),
            self.throughput,
            self.overhead_s,
        )

    def calibrate(self) -> None:
        """Measure this machine before the first request (`app.py` runs it beside the page's start): the default
        preset's request, image-only and without references, at each of `CALIBRATION_STEPS` steps (the fastest
        of `CALIBRATION_REPEATS` runs); the difference gives the seconds per step (the
        throughput) and the rest the fixed seconds of a request."""
        settings = replace(self.presets[0].settings, task="auto", num_frames=1, cache="off")
        jobs = [Job("a red circle", (), None, replace(settings, num_inference_steps=n)) for n in CALIBRATION_STEPS]
        with self._lock:
            self.pipe(jobs[0].prompt, **jobs[0].settings.pipeline_kwargs([], None))  # warm-up (lazy set-up), not timed
            measured = [min(self._timed(job) for _ in range(CALIBRATION_REPEATS)) for job in jobs]
        self.overhead_s = 0.0
        few, many = (self.estimate(job).seconds for job in jobs)
        if measured[1] > measured[0]:
            self.throughput *= (many - few) / (measured[1] - measured[0])
            self.overhead_s = max(measured[0] - self.estimate(jobs[0]).seconds, 0.0)
        else:  # too noisy to split: all of it per step
            self.throughput *= many / measured[1]

    # ------------------------------------------------------------------ running

    def run(
        self,
        job: Job,
        on_step: StepCallback | None = None,
        owner: str | None = None,
        label: str = "",
        job_id: str | None = None,
    ) -> StudioResult:
        """Generate `job` and write the result. Retries once at `cheaper_settings` when the GPU runs out of memory.
        `owner` (a session id) and `job_id` (default: a new one) are who may cancel it. Raises `VinoInputError` /
        `MediaError` for bad input, `GenerationCancelled`, or `OutOfMemory`."""
        job_id = job_id or new_job_id()
        with self._lock:
            if job_id in self._abandoned:
                raise GenerationCancelled("cancelled before it started: its caller went away")
            self._running = RunningJob(job_id, owner)
            try:
                try:
                    return self._run(job, on_step, label)
                except torch.OutOfMemoryError:
                    self._free_memory()
                    cheaper = cheaper_settings(job.settings)
                    if cheaper is None:
                        raise OutOfMemory(self._oom_message(job.settings, None)) from None
                try:
                    result = self._run(replace(job, settings=cheaper), on_step, label)
                except torch.OutOfMemoryError:
                    self._free_memory()
                    raise OutOfMemory(self._oom_message(job.settings, cheaper)) from None
                return replace(
                    result, note=f"Out of GPU memory at your setting; this ran at {_describe(cheaper)} instead."
                )
            finally:
                self._running = None

    def stream(
        self, job: Job, owner: str | None = None, job_id: str | None = None
    ) -> Iterator[Progress | StudioResult]:
        """`run` in a worker thread, yielding `Progress` after each step and finally the `StudioResult`. Closing the
        iterator early (the caller went away) cancels the job after its current step."""
        job_id = job_id or new_job_id()
        yield from self._stream(lambda on_step: [self.run(job, on_step, owner, job_id=job_id)], job_id)

    def cfg_grid(
        self,
        job: Job,
        text_scales: list[float],
        image_scales: list[float],
        owner: str | None = None,
        job_id: str | None = None,
    ) -> Iterator[Progress | list[StudioResult]]:
        """The same job (same seed and inputs) at every text-CFG x image-CFG pair, row-major by text CFG; yields
        `Progress` (with the cell's label) and finally the list of results."""
        if not text_scales or not image_scales:
            raise VinoInputError("give at least one text-CFG value and one image-CFG value, e.g. '3, 5, 7' and '1'")
        if len(text_scales) * len(image_scales) > MAX_CFG_GRID_CELLS:
            raise VinoInputError(f"a CFG grid has at most {MAX_CFG_GRID_CELLS} cells; give fewer values")

        def work(on_step: StepCallback) -> list[list[StudioResult]]:
            results = []
            for text in text_scales:
                for image in image_scales:
                    label = f"text {text:g} / image {image:g}"
                    cell = replace(job, settings=replace(job.settings, guidance_scale=text, image_guidance_scale=image))
                    on_cell_step = lambda i, n, p, label=label: on_step(i, n, p, label)  # noqa: E731
                    results.append(self.run(cell, on_cell_step, owner, label, job_id))
            return [results]

        yield from self._stream(work, job_id)

    def save_sheet(self, results: list[StudioResult], columns: int) -> Path:
        """The labelled contact sheet of a CFG grid's results (PNG, or an MP4 whose tiles play in sync; composed
        with moviepy), with every cell's request and settings embedded; named like its cells."""
        sheet = contact_sheet([r.frames for r in results], [r.label for r in results], columns)
        cells = [{"label": r.label, "media": str(r.path), "settings": r.job.settings.to_dict()} for r in results]
        first = results[0]
        path = self.output_dir / f"{download_stem(first.job, 'cfg-grid-' + first.task)}.png"
        if not first.is_video:
            return save_png(sheet.get_frame(0).astype(np.uint8), path, {"cfg_grid": cells})
        return write_clip(sheet, path.with_suffix(".mp4"), {"cfg_grid": cells})

    def cancel(self, owner: str | None = None, job_id: str | None = None) -> bool:
        """Stop the running job after its current step, if it was started by session `owner` or has id `job_id`.
        A caller with neither (no session, no handle) cancels nothing."""
        running = self._running
        if running is None or not ((owner is not None and owner == running.owner) or (job_id and job_id == running.id)):
            return False
        running.cancelled = True
        self.pipe.cancel()
        return True

    def rewrite(self, prompt: str, images: tuple[str, ...] = (), video: str | None = None) -> str:
        """The loaded Qwen3-VL's detailed caption for a short request (understanding then generation)."""
        check_text(prompt, "instruction")
        check_counts(len(images), int(video is not None))
        return compute(self._rewrite, prompt, list(images), video)

    def _rewrite(self, prompt: str, images: list[str], video: str | None) -> str:
        with self._lock:
            return self.pipe.rewrite_prompt(prompt, images, video)

    # ------------------------------------------------------------------ internals

    def _stream(self, work: Callable[[Callable], list], job_id: str) -> Iterator:
        """Run `work` on the compute thread and yield its events; when the consumer stops early, cancel job
        `job_id`."""
        events: queue.Queue = queue.Queue()
        done = object()

        def on_step(step: int, total: int, preview: np.ndarray | None, cell: str = "") -> None:
            events.put(Progress(step, total, preview, cell))

        def target() -> None:
            try:
                for item in work(on_step):
                    events.put(item)
            except BaseException as exc:  # handed to the consumer, which re-raises it in its own thread
                events.put(exc)
            finally:
                self._abandoned.discard(job_id)
            events.put(done)

        worker = submit(target)
        finished = False
        try:
            while (item := events.get()) is not done:
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
            finished = True
        finally:
            if not finished and not worker.done():
                self._abandoned.add(job_id)
                self.cancel(job_id=job_id)

    def _run(self, job: Job, on_step: StepCallback | None, label: str) -> StudioResult:
        image_sizes = [load_image(path).size for path in job.images]
        video_size = None
        if job.video is not None:
            info = probe_video(job.video)  # refuses videos over the caps before anything is decoded
            video_size = (info.width, info.height)
        kwargs = job.settings.pipeline_kwargs(image_sizes, video_size)
        self._use_attention(job.settings.attention)
        total = kwargs["num_inference_steps"]
        preview = self._previews_cheap(kwargs)
        last_preview = time.perf_counter()  # the first preview after one interval: a short job needs none

        def callback(pipe: VinoPipeline, i: int, timestep: torch.Tensor, tensors: dict) -> None:
            nonlocal last_preview
            if self._running is not None and self._running.cancelled:
                pipe.cancel()  # asked before the sampler started, which clears the pipeline's flag
            if on_step is None:
                return
            image = None
            if preview and i + 1 < total and time.perf_counter() - last_preview >= self.preview_interval_s:
                # a video's preview is its first frame (the first latent frame decodes alone)
                image, last_preview = pipe.decode(tensors["denoised"][:, :, :1])[0], time.perf_counter()
            on_step(i + 1, total, image)

        started = time.perf_counter()
        output = self.pipe(job.prompt, list(job.images), job.video, callback_on_step_end=callback, **kwargs)
        seconds = time.perf_counter() - started
        self._calibrate(job, seconds)
        return self._save(job, output.task, output.frames, kwargs, seconds, label)

    def _previews_cheap(self, kwargs: dict) -> bool:
        """Decoding a preview (one frame) every step is cheap at a modest size with no offload hooks."""
        return kwargs["area"] <= PREVIEW_MAX_PIXELS and not self.pipe.memory_profile.offload

    def _timed(self, job: Job) -> float:
        """Seconds of the engine call of a job without references."""
        kwargs = job.settings.pipeline_kwargs([], None)
        started = time.perf_counter()
        self.pipe(job.prompt, **kwargs)
        return time.perf_counter() - started

    def _use_attention(self, backend: str) -> None:
        """Switch the MMDiT's attention backend when a job asks for another one (refused in one line when this
        machine cannot run it)."""
        if backend != self._attention:
            self.pipe.set_attention_backend(backend)
            self._attention = backend

    def _calibrate(self, job: Job, seconds: float) -> None:
        """Scale the fixed seconds and the seconds per step alike so that the estimate of `job` is the `seconds` it
        just took (the split between them stays the calibration's)."""
        guess = self.estimate(job).seconds
        if guess > 0 and seconds > 0:
            self.overhead_s *= seconds / guess
            self.throughput *= guess / seconds

    def _save(self, job: Job, task: str, frames: np.ndarray, kwargs: dict, seconds: float, label: str) -> StudioResult:
        """Write media (settings embedded; a video edit keeps its source's audio), the task-file sidecar with references
        copied beside it, and a zip of them, all named `download_stem` in a folder of their own."""
        stem = download_stem(job, job.settings.task_for(len(job.images), job.video is not None).name)
        folder = self.output_dir / stem
        refs = folder / "references"
        refs.mkdir(parents=True)
        images = [
            shutil.copy(path, refs / f"image-{i}{Path(path).suffix}") for i, path in enumerate(job.images, start=1)
        ]
        video = None if job.video is None else shutil.copy(job.video, refs / f"video-1{Path(job.video).suffix}")
        spec = TaskSpec(
            index="vino",
            task=task,
            caption=job.prompt,
            image_paths=[str(Path(p).relative_to(folder)) for p in images],
            video_path=None if video is None else str(Path(video).relative_to(folder)),
            base_image=kwargs["base_image"],
        )
        settings = {**kwargs, "studio": job.settings.to_dict(), "model": self.source.label}
        audio = job.video if frames.shape[0] > 1 else None
        path, sidecar = save_with_sidecar(frames, folder / stem, spec, settings, audio_from=audio)
        archive = shutil.make_archive(str(folder) + "-result", "zip", folder, ".")  # written beside: not in itself
        bundle = Path(shutil.move(archive, folder / f"{stem}.zip"))
        return StudioResult(job, task, frames, path, sidecar, bundle, seconds, label)

    def _free_memory(self) -> None:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _oom_message(self, asked: GenerationSettings, tried: GenerationSettings | None) -> str:
        also = f" and again at {_describe(tried)}" if tried else ""
        return (
            f"the GPU ran out of memory at {_describe(asked)}{also} under the '{self.profile_name}' memory profile; "
            "lower the frames or the area, or restart with a smaller memory profile (--profile 16gb or 8gb)"
        )


def download_stem(job: Job, what: str) -> str:
    """A unique, descriptive file name (no suffix): `vino-<what>-seed<seed>-<date>-<time>-<4 hex>`."""
    return f"vino-{what}-seed{job.settings.seed}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


def usable_attention_backends(pipe: VinoPipeline) -> list[str]:
    """The attention backends `pipe` accepts on its device (`VinoPipeline.set_attention_backend` checks the device
    and diffusers' package requirements); 'native' first, and the pipeline is left on it."""
    from ..acceleration import ATTENTION_BACKENDS

    usable = []
    for backend in (DEFAULT_ATTENTION, *(b for b in ATTENTION_BACKENDS if b != DEFAULT_ATTENTION)):
        try:
            pipe.set_attention_backend(backend)
        except VinoInputError:
            continue
        usable.append(backend)
    pipe.set_attention_backend(DEFAULT_ATTENTION)
    return usable


def _resolved(pipe: VinoPipeline | None) -> Future:
    future: Future = Future()
    future.set_result(pipe)
    return future


def _load_pipeline(source: ModelSource, memory_profile: str | None) -> VinoPipeline:
    from ..pipeline import VinoPipeline

    pipe = VinoPipeline.from_pretrained(
        source.checkpoint, vlm=source.vlm, base=source.base, memory_profile=memory_profile
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _describe(settings: GenerationSettings) -> str:
    frames = "" if settings.num_frames == 1 else f", {settings.num_frames} frames"
    return f"area {settings.side}x{settings.side}{frames}"
