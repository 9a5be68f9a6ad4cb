"""The Gradio UI of VINO Studio. It calls only `vino_app.studio` (and through it the engine's public API)."""

from __future__ import annotations

import functools
import html
import inspect
import json
import logging
import random
import re
import uuid
from pathlib import Path
from typing import Callable

import gradio as gr
from fastapi.responses import JSONResponse
from gradio.utils import get_upload_folder as gradio_upload_folder

from .controls import control_dropdown, control_number, control_slider
from .errors import VinoError
from .media import MediaError
from .memory import PROFILES
from .spaces_support import GpuTime, on_gpu
from .studio import ASPECTS, TASK_CHOICES, GenerationSettings, Job, Progress, Studio, StudioResult
from .studio.limits import MAX_SEED, check_text, parse_values
from .studio.studio import new_job_id
from .studio.references import MAX_IMAGES, describe_video, move, normalise_image, remove, renumber_images
from .studio.models import hosting_note
from .studio.reuse import Reused, from_entry, from_file
from .studio.settings import task_fits

logger = logging.getLogger(__name__)
GRID_AXES = {"text CFG": "guidance_scale", "image CFG": "image_guidance_scale"}  # CFG-grid axis -> control
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:/[^\s'\"/<>;,)]+){2,}/?")
CSS = """
#ref-check .error { color: #b91c1c; } #ref-check .warning { color: #b45309; } #ref-check .ok { color: #15803d; }
.chip button { min-width: 0 !important; }
"""


def _insert_js(name: str) -> str:
    """Client-side: insert `name` at the instruction's cursor (or replace the selection)."""
    return f"""(prompt) => {{
        const box = document.querySelector('#prompt textarea');
        const text = prompt || '';
        const start = box && box.selectionStart != null ? box.selectionStart : text.length;
        const end = box && box.selectionEnd != null ? box.selectionEnd : start;
        const before = text.slice(0, start), after = text.slice(end);
        const pad = before && !/\\s$/.test(before) ? ' ' : '';
        const tail = after && !/^\\s/.test(after) ? ' ' : '';
        return before + pad + {json.dumps(name)} + tail + after;
    }}"""


def hide_paths(text: str) -> str:
    """`text` with every absolute server path cut to its file name (messages never show the server's folders)."""
    return ABSOLUTE_PATH.sub(lambda match: Path(match.group()).name, text)


def user_errors(fn: Callable) -> Callable:
    """Turn the engine's errors into `gr.Error` with escaped text and no server paths, logged as one line; log
    anything unexpected once, with its traceback and an error id that the short message shown also carries.
    Works for plain functions and generators."""

    def translate(exc: BaseException) -> gr.Error:
        if isinstance(exc, (gr.Error, VinoError)):
            message = hide_paths(exc.message if isinstance(exc, gr.Error) else str(exc))
            logger.info("refused %s: %s", fn.__name__, " ".join(message.split()))
            if isinstance(exc, gr.Error):
                exc.message = message
                return exc
            return gr.Error(html.escape(message), print_exception=False)
        error_id = uuid.uuid4().hex[:8]
        logger.exception("error %s in %s", error_id, fn.__name__)
        return gr.Error(
            f"Something went wrong inside the studio (error {error_id}, {type(exc).__name__}); the details are in "
            "the server log under that id. Your inputs are kept; try again or change a setting.",
            print_exception=False,
        )

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc) from None

        return generator

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc) from None

    return plain


def unknown_endpoint(request: object, exc: KeyError) -> JSONResponse:
    """Gradio looks an event up by `fn_index` and lets a KeyError out as a 500: answer a clear 404 instead."""
    return JSONResponse({"error": f"no such endpoint ({exc}); the named ones are listed at /gradio_api/info"}, status_code=404)


API_GUARD = {"exception_handlers": {KeyError: unknown_endpoint}}  # FastAPI options for `launch(app_kwargs=...)`


def gallery_paths(gallery: list | None) -> list[str]:
    """File paths of the gallery's items in slot order."""
    return [item[0] if isinstance(item, (list, tuple)) else item for item in gallery or []]


def numbered(paths: list[str]) -> list[tuple[str, str]]:
    return [(path, f"Image {i}") for i, path in enumerate(paths, start=1)]


def report_html(studio: Studio, prompt: str, num_images: int, has_video: bool) -> str:
    report = studio.check(prompt or "", num_images, int(has_video))
    lines = [f'<p class="error">⛔ {html.escape(e)}</p>' for e in report.errors]
    lines += [f'<p class="warning">⚠️ {html.escape(w)}</p>' for w in report.warnings]
    if not lines and (prompt or "").strip():
        lines = ['<p class="ok">✓ every named reference is attached</p>']
    return "\n".join(lines)


class StudioUI:
    """Event handlers bound to one `Studio`; `build()` lays out the page."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.uploads = studio.output_dir / "uploads"

    # ------------------------------------------------------------------ helpers

    def settings(self, task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative) -> GenerationSettings:
        """The controls' values as sent (any JSON a caller posts), checked on the server against `limits.CONTROLS`."""
        negative = negative.strip() if isinstance(negative, str) else negative
        return GenerationSettings(
            task=task, num_frames=frames, side=side, aspect=aspect, num_inference_steps=steps, guidance_scale=cfg,
            image_guidance_scale=image_cfg, shift=shift, negative_prompt=negative or None, seed=seed,
        )

    def job(self, prompt, gallery, video, task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative) -> Job:
        if not (prompt or "").strip():
            raise gr.Error("The instruction is empty: describe what to make, naming references as Image 1, Video 1.")
        return Job(prompt, tuple(gallery_paths(gallery)), video or None, self.settings(task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative))

    @staticmethod
    def controls_from(settings: GenerationSettings) -> list:
        s = settings
        return [s.task, s.num_frames, s.side, s.aspect, s.num_inference_steps, s.guidance_scale, s.image_guidance_scale, s.shift, s.seed, s.negative_prompt or ""]

    def header(self) -> str:
        studio = self.studio
        label = html.escape(studio.source.label)
        if studio.source.kind == "tiny" and "noise" not in label:
            label += " — random test weights: outputs are noise"
        warn = "⚠️ " if studio.source.kind == "tiny" else ""
        note = hosting_note(studio.source, studio.pipe._execution_device.type)
        return (
            f"# VINO Studio\nModel: **{warn}{label}** · memory profile **{studio.profile_name}** · "
            f"device **{studio.pipe._execution_device}**" + (f"  \n{html.escape(note)}" if note else "")
        )

    def switch_profile(self, name):
        if self.studio.profile_name == "zerogpu" and name != "zerogpu":
            raise gr.Error("On ZeroGPU the model stays in the 'zerogpu' memory profile (hooks and quantization are not supported there).")
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
            problems.append(f"VINO Studio takes at most {MAX_IMAGES} images; images after Image {MAX_IMAGES} were left out")
            kept = kept[:MAX_IMAGES]
        for problem in problems:
            gr.Warning(html.escape(problem))
        return numbered(kept)

    def shift_slot(self, gallery, selected, offset, prompt):
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
        return numbered(paths), renumber_images(prompt or "", order), selected

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
        """Back to `auto` when the attached references no longer fit the chosen task (a preset's t2i plus images)."""
        if not isinstance(task, str) or not isinstance(gallery, (list, type(None))):
            return "auto"
        return task if task_fits(task, len(gallery_paths(gallery)), bool(video)) else "auto"

    # ------------------------------------------------------------------ presets and estimates

    def apply_preset(self, key):
        preset = self.studio.preset(key)
        return [
            preset.instruction,
            numbered(preset.image_paths()),
            preset.video_path(),
            f"**{html.escape(preset.name)}** — {html.escape(preset.description)}",
            *self.controls_from(preset.settings),
        ]

    def estimate(self, prompt, gallery, video, task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative):
        try:
            job = Job(prompt or "", tuple(gallery_paths(gallery)), video or None, self.settings(task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative))
            return self.studio.estimate(job).summary()
        except VinoError as exc:
            return f"⚠️ {html.escape(str(exc))}"

    # ------------------------------------------------------------------ generation

    def generate(self, prompt, gallery, video, task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative, request: gr.Request = None):
        job = self.job(prompt, gallery, video, task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative)
        report = self.studio.check(job.prompt, len(job.images), int(job.video is not None))
        if report.errors:
            raise gr.Error(html.escape("; ".join(report.errors)))
        job_id = new_job_id()
        yield f"Job {job_id}: starting…", gr.update(), gr.update(), gr.update(), gr.update()
        for event in self.studio.stream(job, getattr(request, "session_hash", None), job_id):
            if isinstance(event, Progress):
                yield f"Job {job_id}: step {event.step} of {event.total}…", event.preview, gr.update(), gr.update(), gr.update()
            else:
                yield self.show(event)

    def show(self, result: StudioResult):
        """Outputs for a finished result: status, image or video, downloads."""
        status = f"Done: {result.task}, {result.frames.shape[0]} frame(s) of {result.frames.shape[2]}x{result.frames.shape[1]} in {result.seconds:.1f} s."
        if result.note:
            status += f" {result.note}"
        image = None if result.is_video else str(result.path)
        video = str(result.path) if result.is_video else None
        return (
            status,
            image,
            gr.update(value=video, visible=result.is_video),
            [str(result.path), str(result.sidecar), str(result.bundle)],
            self.history_entry(result),
        )

    @staticmethod
    def history_entry(result: StudioResult) -> dict:
        return {
            "media": str(result.path),
            "sidecar": str(result.sidecar),
            "bundle": str(result.bundle),
            "prompt": result.job.prompt,
            "images": list(result.job.images),
            "video": result.job.video,
            "settings": result.job.settings.to_dict(),
            "caption": f"{result.task} · {result.label or 'seed ' + str(result.job.settings.seed)} · {result.job.prompt[:40]}",
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
        return self.studio.rewrite(prompt, tuple(gallery_paths(gallery)), video or None)

    def cfg_grid(self, text_values, image_values, prompt, gallery, video, task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative, request: gr.Request = None):
        job = self.job(prompt, gallery, video, task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative)
        text_scales, image_scales = grid_values(text_values, "text CFG"), grid_values(image_values, "image CFG")
        cells, done, job_id = len(text_scales) * len(image_scales), 0, new_job_id()
        yield f"Job {job_id}: starting {cells} cells…", gr.update(), gr.update(), gr.update(), []
        for event in self.studio.cfg_grid(job, text_scales, image_scales, getattr(request, "session_hash", None), job_id):
            if isinstance(event, Progress):
                done += event.step == event.total
                yield f"Job {job_id}: cell {min(done + 1, cells)} of {cells} ({event.cell}): step {event.step} of {event.total}", gr.update(), gr.update(), gr.update(), []
            else:
                sheet_path = str(self.studio.save_sheet(event, columns=len(image_scales)))
                is_video = event[0].is_video
                entries = [self.history_entry(r) for r in event]
                yield (
                    f"Done: {cells} cells, same seed {job.settings.seed}.",
                    None if is_video else sheet_path,
                    gr.update(value=sheet_path if is_video else None, visible=is_video),
                    [(e["media"], e["caption"].split(" · ")[1]) for e in entries],
                    entries,
                )

    # ------------------------------------------------------------------ history and reuse

    def open_entry(self, entries, evt: gr.SelectData):
        index = getattr(evt, "index", None)
        if not isinstance(entries, list) or not isinstance(index, int) or not 0 <= index < len(entries):
            raise gr.Error("Pick an item in the history or the grid first.")
        entry = entries[index]
        inputs = {"prompt": entry["prompt"], "images": [Path(p).name for p in entry["images"]], "video": entry["video"] and Path(entry["video"]).name}
        return entry, [entry["media"], entry["sidecar"], entry["bundle"]], json.dumps({**inputs, "settings": entry["settings"]}, indent=1)

    def fill(self, reused: Reused) -> list:
        """Outputs of a reuse: instruction, images, video, the controls, and a status line."""
        return [reused.prompt, numbered(list(reused.images)), reused.video, *self.controls_from(reused.settings), html.escape(reused.note())]

    def reuse(self, entry):
        """This session's history item: references attached again only when they are files the studio owns."""
        return self.fill(from_entry(entry, [self.studio.output_dir, gradio_upload_folder()]))

    def reuse_file(self, file):
        """Settings from a dropped PNG/MP4 made by the studio or the CLI, or from a task-file sidecar; the references
        it names are never opened (listed by file name to attach again)."""
        if not file or not isinstance(file, str):
            raise gr.Error("Drop a PNG or MP4 made by VINO Studio, or its .json sidecar.")
        return self.fill(from_file(file))

    # ------------------------------------------------------------------ layout

    def build(self) -> gr.Blocks:
        studio = self.studio
        preset_choices = [(p.name, p.key) for p in studio.presets]
        first = studio.presets[0]
        with gr.Blocks(title="VINO Studio", delete_cache=(3600, 3600)) as demo:
            header = gr.Markdown(self.header(), elem_id="model-info")
            selected = gr.Number(None, visible=False, precision=0, label="Selected slot (0-based)")
            history = gr.State([])
            grid_entries = gr.State([])
            picked = gr.State(None)
            with gr.Row():
                with gr.Column(scale=5):
                    with gr.Row():
                        preset = gr.Dropdown(preset_choices, value=first.key, label="Task preset", scale=3)
                        load_example = gr.Button("Load example", scale=1)
                    preset_info = gr.Markdown()
                    gallery = gr.Gallery(
                        label=f"Images (drag & drop, up to {MAX_IMAGES}) — numbered as the model sees them",
                        type="filepath",
                        interactive=True,
                        columns=4,
                        height=220,
                        file_types=["image"],
                        elem_id="images",
                    )
                    with gr.Row():
                        left = gr.Button("◀ Earlier", size="sm")
                        right = gr.Button("Later ▶", size="sm")
                        drop = gr.Button("✕ Remove", size="sm")
                    video = gr.Video(label="Video 1 (optional)", sources=["upload"], height=200, elem_id="video")
                    video_info = gr.Markdown()
                    with gr.Row(elem_classes="chip"):
                        chips = [gr.Button(f"Image {i + 1}", size="sm", visible=False) for i in range(MAX_IMAGES)]
                        chips.append(gr.Button("Video 1", size="sm", visible=False))
                    prompt = gr.Textbox(label="Instruction (click a chip to insert its name)", lines=3, elem_id="prompt")
                    ref_check = gr.HTML(elem_id="ref-check")
                    with gr.Accordion("Rewrite with the VLM (understanding then generation)", open=False):
                        rewrite_btn = gr.Button("Rewrite into a detailed caption")
                        rewritten = gr.Textbox(label="Rewritten caption (editable)", lines=3, elem_id="rewritten")
                        use_rewritten = gr.Button("Use this caption")
                    with gr.Accordion("Settings", open=True):
                        with gr.Row():
                            task = control_dropdown("task", list(TASK_CHOICES), "auto", label="Task (auto: from the inputs)", elem_id="task")
                            aspect = control_dropdown("aspect", list(ASPECTS), "from references", label="Aspect")
                        frames = control_slider("num_frames", 1, label="Frames (1 = image; 4k+1)")
                        side = control_slider("side", 640, label="Area (side of a square of the same area, px)")
                        with gr.Row():
                            cfg = control_slider("guidance_scale", 5, label="Text CFG")
                            image_cfg = control_slider("image_guidance_scale", 1, label="Image CFG (1 = off)")
                        with gr.Row():
                            steps = control_slider("num_inference_steps", 50, label="Steps", elem_id="steps")
                            shift = control_slider("shift", 5, label="Shift")
                        with gr.Row():
                            seed = control_number("seed", 0, label="Seed")
                            dice = gr.Button("🎲", size="sm", scale=0)
                        negative = gr.Textbox(label="Negative prompt (empty: the release's default)", lines=2)
                        profile = gr.Dropdown(sorted(PROFILES), value=studio.profile_name, label="Memory profile (changing it reloads the model)", interactive=studio.profile_name != "zerogpu")
                    estimate = gr.Markdown(elem_id="estimate")
                    with gr.Row():
                        generate = gr.Button("Generate", variant="primary", elem_id="generate")
                        cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
                    job_handle = gr.Textbox("", visible=False, label="Job id (callers without a session: from the status)")
                with gr.Column(scale=5):
                    status = gr.Markdown(elem_id="status")
                    with gr.Tabs():
                        with gr.Tab("Result"):
                            result_image = gr.Image(label="Result", type="filepath", interactive=False, height=420, elem_id="result-image")
                            result_video = gr.Video(label="Result video", interactive=False, visible=False, elem_id="result-video")
                            downloads = gr.File(label="Downloads (media with settings, task-file sidecar, zip with references)", file_count="multiple", elem_id="downloads")
                        with gr.Tab("Compare CFG"):
                            with gr.Row():
                                text_values = gr.Textbox("3, 5, 7", label="Text CFG values", elem_id="text-cfg-values")
                                image_values = gr.Textbox("1", label="Image CFG values", elem_id="image-cfg-values")
                            grid_btn = gr.Button("Run the grid (same seed and inputs)", elem_id="grid")
                            sheet_image = gr.Image(label="Contact sheet", type="filepath", interactive=False, elem_id="sheet")
                            sheet_video = gr.Video(label="Tiles playing in sync", interactive=False, visible=False)
                            grid_cells = gr.Gallery(label="Cells (click one to open, keep or export it)", columns=4, height=200, elem_id="cells")
                        with gr.Tab("History"):
                            history_gallery = gr.Gallery(label="This session", columns=4, height=260, elem_id="history")
                            reuse_drop = gr.File(label="…or drop a PNG / MP4 / .json made by VINO Studio", file_types=[".png", ".mp4", ".json"])
                    picked_files = gr.File(label="Selected item", file_count="multiple")
                    picked_settings = gr.Code(label="Its inputs and settings", language="json")
                    with gr.Row():
                        keep = gr.Button("Keep in history")
                        reuse = gr.Button("Reuse its settings")

            controls = [task, frames, side, aspect, steps, cfg, image_cfg, shift, seed, negative]
            inputs = [prompt, gallery, video, *controls]
            fill = [prompt, gallery, video, *controls]
            result_outputs = [status, result_image, result_video, downloads, picked]

            gallery.upload(user_errors(self.normalise), gallery, gallery, api_name="add_images")
            gallery.select(user_errors(_selected_index), None, selected, api_visibility="private")
            for button, offset in ((left, -1), (right, 1), (drop, 0)):
                button.click(
                    user_errors(_shift(self, offset)),
                    [gallery, selected, prompt],
                    [gallery, prompt, selected],
                    api_name={-1: "move_earlier", 1: "move_later", 0: "remove_image"}[offset],
                )
            video.change(user_errors(self.video_info), video, video_info, api_name="check_video")
            for source in (gallery, video):
                source.upload(user_errors(self.follow_inputs), [task, gallery, video], task, api_name=False)
            for source in (prompt, gallery, video):
                source.change(user_errors(self.check), [prompt, gallery, video], [ref_check, *chips], api_name="check_references" if source is prompt else False)
            for i, chip in enumerate(chips):
                name = f"Image {i + 1}" if i < MAX_IMAGES else "Video 1"
                chip.click(None, prompt, prompt, js=_insert_js(name))
            for control in [prompt, gallery, video, *controls]:
                control.change(user_errors(self.estimate), inputs, estimate, api_name="estimate" if control is prompt else False, show_progress="hidden")
            load_example.click(user_errors(self.apply_preset), preset, [*fill[:3], preset_info, *controls], api_name="apply_preset")
            preset.change(user_errors(self.apply_preset), preset, [*fill[:3], preset_info, *controls], api_name=False)
            profile.change(user_errors(self.switch_profile), profile, [header, status], api_name="switch_profile", concurrency_id="gpu")
            dice.click(lambda: random.randint(0, MAX_SEED), None, seed, api_name="random_seed")
            gpu = GpuTime(self.job, self.studio.estimate, grid_values)
            rewrite = on_gpu(user_errors(self.rewrite), user_errors(gpu.rewrite))
            rewrite_btn.click(rewrite, [prompt, gallery, video], rewritten, api_name="rewrite", concurrency_id="gpu")
            use_rewritten.click(None, rewritten, prompt, js="(text) => text")

            run = on_gpu(user_errors(self.generate), user_errors(gpu.generate))
            gen_event = generate.click(run, inputs, result_outputs, api_name="generate", concurrency_id="gpu", show_progress_on=[status])
            gen_event.success(user_errors(_append_history), [history, picked], [history, history_gallery], api_name=False)
            grid = on_gpu(user_errors(self.cfg_grid), user_errors(gpu.cfg_grid))
            grid_event = grid_btn.click(grid, [text_values, image_values, *inputs], [status, sheet_image, sheet_video, grid_cells, grid_entries], api_name="cfg_grid", concurrency_id="gpu", show_progress_on=[status])

            # On ZeroGPU a run lives in a worker process: Cancel closes the call there (Studio.stream then stops it).
            closes = [gen_event, grid_event] if studio.profile_name == "zerogpu" else None
            cancel.click(user_errors(self.cancel), job_handle, status, api_name="cancel", concurrency_limit=None, concurrency_id="cancel", cancels=closes)
            grid_cells.select(user_errors(self.open_entry), grid_entries, [picked, picked_files, picked_settings], api_visibility="private")
            history_gallery.select(user_errors(self.open_entry), history, [picked, picked_files, picked_settings], api_visibility="private")
            keep.click(user_errors(_append_history), [history, picked], [history, history_gallery], api_name=False)
            reuse.click(user_errors(self.reuse), picked, [*fill, status], api_name=False)
            reuse_drop.upload(user_errors(self.reuse_file), reuse_drop, [*fill, status], api_name="reuse_settings")
            demo.load(user_errors(self.apply_preset), preset, [*fill[:3], preset_info, *controls], api_name=False)
        return demo


def grid_values(text: str, axis: str) -> list[float]:
    """A CFG grid's values for `axis` ("text CFG" / "image CFG"), each checked against its slider's range."""
    return parse_values(text, GRID_AXES[axis])


def _selected_index(evt: gr.SelectData) -> int:
    index = getattr(evt, "index", None)
    if not isinstance(index, int) or isinstance(index, bool):
        raise gr.Error("Select an image slot by clicking its picture.")
    return index


def _shift(ui: StudioUI, offset: int) -> Callable:
    def handler(gallery, selected, prompt):
        return ui.shift_slot(gallery, selected, offset, prompt)

    return handler


def _append_history(entries: list, entry: dict | None):
    entries = entries if isinstance(entries, list) else []
    if isinstance(entry, dict) and entry not in entries:
        entries = [*entries, entry]
    return entries, [(e["media"], e["caption"]) for e in entries]
