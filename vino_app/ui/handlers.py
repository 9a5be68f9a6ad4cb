"""The studio page's event handlers, bound to one `Studio`. Each returns the values of its outputs (see `layout`)."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder as gradio_upload_folder

from ..errors import GenerationCancelled, VinoError
from ..export import VIDEO_FPS
from ..media import MediaError
from ..studio import GenerationSettings, Job, Progress, Studio, StudioResult
from ..studio.history import kept_entries
from ..studio.limits import check_text, parse_values
from ..studio.models import hosting_note
from ..studio.references import MAX_IMAGES, describe_video, move, normalise_image, remove, renumber_images
from ..studio.reuse import Reused, from_entry, from_file
from ..studio.settings import task_fits
from ..studio.studio import new_job_id
from .errors import hide_paths
from .record import released_sliders, settings_from, values_from

GRID_AXES = {"text CFG": "guidance_scale", "image CFG": "image_guidance_scale"}  # CFG-grid axis -> control
KEEP = gr.update()  # an output left as it is
STATUS_INTERVAL_S = 0.25  # the progress bar is sent at most this often (each update is a message to the page)


class Throttle:
    """`due()` is True at most once per `interval_s` seconds, the first time one interval after it was made."""

    def __init__(self, interval_s: float = STATUS_INTERVAL_S) -> None:
        self.interval_s, self.last = interval_s, time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval_s:
            return False
        self.last = now
        return True


def gallery_paths(gallery: list | None) -> list[str]:
    """File paths of the gallery's items in slot order."""
    return [item[0] if isinstance(item, (list, tuple)) else item for item in gallery or []]


def numbered(paths: list[str]) -> list[tuple[str, str]]:
    return [(path, f"Image {i}") for i, path in enumerate(paths, start=1)]


def grid_values(text: str, axis: str) -> list[float]:
    """A CFG grid's values for `axis` ("text CFG" / "image CFG"), each checked against its slider's range."""
    return parse_values(text, GRID_AXES[axis])


def progress_html(job_id: str, step: int, total: int, elapsed: float, what: str) -> str:
    """The running job's status: a progress bar of `step` of `total`, elapsed and remaining seconds, then the
    text "Job <id>: <what>…"."""
    left = f" · about {elapsed / step * (total - step):.1f} s left" if step else ""
    return (
        f'<progress class="job-progress" value="{step}" max="{total}"></progress> '
        f'<span class="job-time">{elapsed:.1f} s elapsed{left}</span> · Job {job_id}: {html.escape(what)}…'
    )


def report_html(studio: Studio, prompt: str, num_images: int, has_video: bool) -> str:
    report = studio.check(prompt or "", num_images, int(has_video))
    lines = [f'<p class="error">⛔ {html.escape(e)}</p>' for e in report.errors]
    lines += [f'<p class="warning">⚠️ {html.escape(w)}</p>' for w in report.warnings]
    if not lines and (prompt or "").strip():
        lines = ['<p class="ok">✓ every named reference is attached</p>']
    return "\n".join(lines)


def result_view(image: str | None = None, video: str | None = None) -> tuple[dict, dict]:
    """Updates of the result image and video: the one given is shown, the other hidden."""
    return gr.update(value=image, visible=video is None), gr.update(value=video, visible=video is not None)


class Handlers:
    """Event handlers bound to one `Studio`."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.uploads = studio.output_dir / "uploads"
        self.status_interval_s = STATUS_INTERVAL_S

    # ------------------------------------------------------------------ helpers

    def job(self, prompt, gallery, video, *controls) -> Job:
        """The job for the posted instruction, references and control values (`record.NAMES` order)."""
        return self.job_for(prompt, gallery, video, settings_from(controls))

    @staticmethod
    def job_for(prompt, gallery, video, settings: GenerationSettings) -> Job:
        if not (prompt or "").strip():
            raise gr.Error("The instruction is empty: describe what to make, naming references as Image 1, Video 1.")
        return Job(prompt, tuple(gallery_paths(gallery)), video or None, settings)

    def header(self) -> str:
        studio = self.studio
        label = html.escape(studio.source.label)
        if studio.source.kind == "tiny" and "noise" not in label:
            label += " — random test weights: outputs are noise"
        warn = "⚠️ " if studio.source.kind == "tiny" else ""
        if not studio.ready:
            return f"# VINO Studio\nLoading **{warn}{label}** · memory profile **{studio.profile_name}** …"
        note = hosting_note(studio.source, studio.pipe._execution_device.type)
        return (
            f"# VINO Studio\nModel: **{warn}{label}** · memory profile **{studio.profile_name}** · "
            f"device **{studio.pipe._execution_device}**" + (f"  \n{html.escape(note)}" if note else "")
        )

    def loaded_header(self) -> str:
        """The header once the model has loaded (waits for a background load; a failed one says why)."""
        try:
            self.studio.pipe
        except VinoError as exc:
            return f"# VINO Studio\nThe model could not be loaded: {html.escape(hide_paths(str(exc)))}"
        return self.header()

    def switch_profile(self, name):
        if self.studio.profile_name == "zerogpu" and name != "zerogpu":
            raise gr.Error(
                "On ZeroGPU the model stays in the 'zerogpu' memory profile "
                "(hooks and quantization are not supported there)."
            )
        self.studio.switch_profile(name)
        return self.header(), f"Model reloaded with the '{html.escape(name)}' memory profile."

    # ------------------------------------------------------------------ references

    def normalise(self, gallery):
        """Uploaded images -> RGB PNG slots "Image 1".."Image N" (at most 8); unreadable files are dropped with a
        warning naming them; the others are kept."""
        kept, problems = [], []
        for path in gallery_paths(gallery):
            try:
                kept.append(str(normalise_image(path, self.uploads)))
            except MediaError as exc:
                problems.append(hide_paths(str(exc)))
        if len(kept) > MAX_IMAGES:
            problems.append(
                f"VINO Studio takes at most {MAX_IMAGES} images; images after Image {MAX_IMAGES} were left out"
            )
            kept = kept[:MAX_IMAGES]
        for problem in problems:
            gr.Warning(html.escape(problem))
        return numbered(kept)

    def shift_slot(self, gallery, selected, offset, prompt):
        """Move the selected slot by `offset` (0: remove it); the names in the instruction follow. Returns the
        gallery (its highlight on the moved picture, none after a removal), the instruction and the selection."""
        paths = gallery_paths(gallery)
        if selected is None or not 0 <= int(selected) < len(paths):
            raise gr.Error("Select an image slot first (click its picture), then move or remove it.")
        selected = int(selected)
        if offset:
            paths, order = move(paths, selected, offset)
            selected = order.index(selected + 1)
        else:
            paths, order = remove(paths, selected)
            selected = None
        # a component, not gr.update: an update drops selected_index=None, which clears the highlight
        gallery = gr.Gallery(value=numbered(paths), selected_index=selected)
        return gallery, renumber_images(prompt or "", order), selected

    @staticmethod
    def slot_buttons(selected) -> list[dict]:
        """Earlier / Later / Remove work only on a selected slot."""
        return [gr.update(interactive=selected is not None)] * 3

    def video_info(self, video):
        if not video:
            return ""
        return html.escape(describe_video(video))

    def check(self, prompt, gallery, video):
        count = len(gallery_paths(gallery))
        chips = [gr.update(visible=i < count) for i in range(MAX_IMAGES)] + [gr.update(visible=bool(video))]
        return [report_html(self.studio, prompt, count, bool(video)), *chips]

    @staticmethod
    def follow_inputs(task, gallery, video):
        """Task, preset label, preset note: back to `auto`, the preset label and note cleared, when the attached
        references no longer fit the chosen task (a preset's t2i plus images); else all three as they are."""
        valid = isinstance(task, str) and isinstance(gallery, (list, type(None)))
        if valid and task_fits(task, len(gallery_paths(gallery)), bool(video)):
            return task, KEEP, KEEP
        return "auto", None, ""

    def attention_choices(self):
        """The attention dropdown offering the backends this machine runs (asked once the model has loaded)."""
        return gr.update(choices=self.studio.attention_backends)

    @staticmethod
    def release_view(release, task, num_frames, gallery, video) -> list:
        """The sliders "Release defaults" fills, for the attached references (`record.released_sliders`)."""
        count = len(gallery_paths(gallery)) if isinstance(gallery, list) else 0
        return released_sliders(release, task, num_frames, count, bool(video))

    # ------------------------------------------------------------------ presets and estimates

    def apply_preset(self, key):
        """Instruction, images, video, the preset's note, then the controls."""
        preset = self.studio.preset(key)
        return [
            preset.instruction,
            numbered(preset.image_paths()),
            preset.video_path(),
            f"**{html.escape(preset.name)}** — {html.escape(preset.description)}",
            *values_from(preset.settings, len(preset.images), preset.video is not None),
        ]

    def estimate(self, prompt, gallery, video, settings: GenerationSettings, request=None):
        try:
            job = Job(prompt or "", tuple(gallery_paths(gallery)), video or None, settings)
            return self.studio.estimate(job).summary()
        except VinoError as exc:
            return f"⚠️ {html.escape(str(exc))}"

    # ------------------------------------------------------------------ generation

    def generate(self, prompt, gallery, video, settings: GenerationSettings, request: gr.Request = None):
        """Status (a progress bar while it runs), result image, result video, downloads, the history entry."""
        job = self.job_for(prompt, gallery, video, settings)
        report = self.studio.check(job.prompt, len(job.images), int(job.video is not None))
        if report.errors:
            raise gr.Error(html.escape("; ".join(report.errors)))
        job_id, started = new_job_id(), time.monotonic()
        total = job.settings.num_inference_steps
        yield progress_html(job_id, 0, total, 0.0, "starting"), *result_view(), KEEP, KEEP
        throttle = Throttle(self.status_interval_s)
        try:
            for event in self.studio.stream(job, getattr(request, "session_hash", None), job_id):
                if isinstance(event, Progress) and not (throttle.due() or event.preview is not None):
                    continue
                if isinstance(event, Progress):
                    status = progress_html(job_id, event.step, event.total, time.monotonic() - started,
                                           f"step {event.step} of {event.total}")
                    preview = KEEP if event.preview is None else gr.update(value=event.preview)
                    yield status, preview, KEEP, KEEP, KEEP
                else:
                    yield self.show(event)
        except GenerationCancelled as exc:
            yield hide_paths(str(exc)).capitalize() + ".", KEEP, KEEP, KEEP, KEEP

    def show(self, result: StudioResult):
        """Outputs for a finished result: status, image or video (the other hidden), downloads, history entry."""
        frames = result.frames
        size = f"{frames.shape[2]}x{frames.shape[1]}"
        length = f" ({frames.shape[0] / VIDEO_FPS:.2f} s at {VIDEO_FPS} fps, looping)" if result.is_video else ""
        status = f"Done: {result.task}, {frames.shape[0]} frame(s) of {size}{length} in {result.seconds:.1f} s."
        if result.note:
            status += f" {result.note}"
        path = str(result.path)
        view = result_view(video=path) if result.is_video else result_view(image=path)
        return status, *view, [path, str(result.sidecar), str(result.bundle)], self.history_entry(result)

    @staticmethod
    def history_entry(result: StudioResult) -> dict:
        settings = result.job.settings
        return {
            "media": str(result.path),
            "sidecar": str(result.sidecar),
            "bundle": str(result.bundle),
            "prompt": result.job.prompt,
            "images": list(result.job.images),
            "video": result.job.video,
            "settings": settings.to_dict(),
            "caption": f"{result.task} · {result.label or 'seed ' + str(settings.seed)} · {result.job.prompt[:40]}",
        }

    def cancel(self, job_id: str = "", request: gr.Request = None):
        """Cancel the caller's running job: the one its session started, or the one whose id (shown in the status
        as "Job <id>") it gives. A closed stream cancels its job by itself (`Studio.stream`)."""
        job_id = check_text(job_id, "job id", limit=64).strip() or None
        if self.studio.profile_name == "zerogpu":  # the run is in ZeroGPU's worker; this click's `cancels` closes it
            return "Cancelling after the current step…"
        if self.studio.cancel(getattr(request, "session_hash", None), job_id):
            return "Cancelling after the current step…"
        return "Nothing of yours is running."

    def rewrite(self, prompt, gallery, video):
        if not (prompt or "").strip():
            raise gr.Error("Write a short request first; the VLM expands it into a detailed caption.")
        caption = self.studio.rewrite(prompt, tuple(gallery_paths(gallery)), video or None)
        if not caption.strip():
            raise gr.Error(
                "The VLM wrote an empty caption for this request (the loaded model's VLM gave no words); your "
                "instruction is unchanged: generate with it as it is, or add detail and rewrite again."
            )
        return caption

    def cfg_grid(self, text_values, image_values, prompt, gallery, video, settings, request: gr.Request = None):
        """Status, contact sheet image, contact sheet video, the cells' gallery, the cells' entries."""
        job = self.job_for(prompt, gallery, video, settings)
        text_scales, image_scales = grid_values(text_values, "text CFG"), grid_values(image_values, "image CFG")
        cells, done, job_id, started = len(text_scales) * len(image_scales), 0, new_job_id(), time.monotonic()
        steps = cells * job.settings.num_inference_steps
        yield progress_html(job_id, 0, steps, 0.0, f"starting {cells} cells"), KEEP, KEEP, KEEP, []
        owner = getattr(request, "session_hash", None)
        throttle = Throttle(self.status_interval_s)
        for event in self.studio.cfg_grid(job, text_scales, image_scales, owner, job_id):
            if isinstance(event, Progress):
                what = f"cell {min(done + 1, cells)} of {cells} ({event.cell}): step {event.step} of {event.total}"
                elapsed = time.monotonic() - started
                status = progress_html(job_id, done * event.total + event.step, steps, elapsed, what)
                done += event.step == event.total
                if throttle.due():
                    yield status, KEEP, KEEP, KEEP, []
            else:
                sheet_path = str(self.studio.save_sheet(event, columns=len(image_scales)))
                is_video = event[0].is_video
                entries = [self.history_entry(r) for r in event]
                yield (
                    f"Done: {cells} cells, same seed {job.settings.seed}.",
                    *(result_view(video=sheet_path) if is_video else result_view(image=sheet_path)),
                    [(e["media"], e["caption"].split(" · ")[1]) for e in entries],
                    entries,
                )

    # ------------------------------------------------------------------ history and reuse

    def history(self, entries, entry=None):
        """The history kept in the browser, and its gallery: `entries` (what the page sent back, checked:
        `studio.history.kept_entries`) with `entry` added."""
        entries = entries if isinstance(entries, list) else []
        kept = kept_entries([*entries, entry] if entry is not None else entries, self.studio.output_dir)
        return kept, [(e["media"], e["caption"]) for e in kept]

    def open_entry(self, entries, evt: gr.SelectData):
        """The history's or the CFG grid's item `evt.index` (of the entries as the gallery shows them, checked)."""
        entries = kept_entries(entries, self.studio.output_dir)
        index = getattr(evt, "index", None)
        if not isinstance(index, int) or not 0 <= index < len(entries):
            raise gr.Error("Pick an item in the history or the grid first.")
        entry = entries[index]
        inputs = {
            "prompt": entry["prompt"],
            "images": [Path(p).name for p in entry["images"]],
            "video": entry["video"] and Path(entry["video"]).name,
        }
        files = [entry["media"], entry["sidecar"], entry["bundle"]]
        return entry, files, json.dumps({**inputs, "settings": entry["settings"]}, indent=1)

    @staticmethod
    def draft(prompt, gallery, video, *controls) -> dict:
        """What the page keeps in the browser while it is edited, to restore on a reload (`restore`): the
        instruction, the references and the controls' values as posted (checked only when restored)."""
        return {"prompt": prompt, "images": gallery_paths(gallery), "video": video, "controls": list(controls)}

    def restore(self, key, draft):
        """On a page load: the instruction, references (those still in the studio's folders) and settings of the
        last visit, kept in the browser by `draft`; else (no draft, or one that is not a valid request) preset
        `key`'s. Outputs as `fill`'s."""
        try:
            entry = {**draft, "settings": settings_from(draft["controls"]).to_dict()}
            reused = from_entry(entry, [self.studio.output_dir, gradio_upload_folder()])
        except (gr.Error, VinoError, TypeError, KeyError, ValueError):
            instruction, gallery, video, info, *controls = self.apply_preset(key)
            return [instruction, gallery, video, *controls, key, info, ""]
        *restored, _ = self.fill(reused)
        missing = f" Attach again: {', '.join(reused.attach_again)}." if reused.attach_again else ""
        return [*restored, html.escape(f"Restored your last instruction and settings.{missing}")]

    def fill(self, reused: Reused) -> list:
        """Outputs of a reuse: instruction, images, video, the controls, the preset label and note cleared (the
        settings are no longer a preset's), a status line."""
        shown = values_from(reused.settings, reused.num_images, reused.has_video)
        note = html.escape(reused.note())
        return [reused.prompt, numbered(list(reused.images)), reused.video, *shown, None, "", note]

    def reuse(self, entry):
        """This session's history item: references attached again only when they are files the studio owns."""
        return self.fill(from_entry(entry, [self.studio.output_dir, gradio_upload_folder()]))

    def reuse_file(self, file):
        """Settings from a dropped PNG/MP4 made by the studio or the CLI, or from a task-file sidecar; the references
        it names are never opened (listed by file name to attach again)."""
        if not file or not isinstance(file, str):
            raise gr.Error("Drop a PNG or MP4 made by VINO Studio, or its .json sidecar.")
        return self.fill(from_file(file))
