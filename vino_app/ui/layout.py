"""The studio page's layout: components, their events, and the page's CSS. Handlers live in `handlers`."""

from __future__ import annotations

import json
import random

import gradio as gr

from ..memory import PROFILES
from ..spaces_support import GpuTime, on_gpu
from ..studio.limits import MAX_SEED
from ..studio.references import MAX_IMAGES
from .errors import user_errors
from .handlers import Handlers, grid_values
from .record import SettingsControls, settings_endpoint

RESULT_HEIGHT_PX = 420
HISTORY_STORAGE_KEY = "vino-studio-history"  # the browser's localStorage key of a session's history
DRAFT_STORAGE_KEY = "vino-studio-draft"  # ... and of the inputs as last edited
SLOT_BUTTONS = (("◀ Earlier", "earlier"), ("Later ▶", "later"), ("✕ Remove", "remove"))  # label, elem_id
CSS = """
#ref-check .error { color: #b91c1c; } #ref-check .warning { color: #b45309; } #ref-check .ok { color: #15803d; }
.chip button { min-width: 0 !important; }
.gradio-container { overflow: clip !important; }  /* hidden would make the sticky bar scroll away */
#actions { position: sticky; bottom: 0; z-index: 20; background: var(--background-fill-primary);
           border-top: 1px solid var(--border-color-primary); padding: 8px 0 12px; margin-bottom: -12px; }
#result-pane { position: sticky; top: 0; align-self: flex-start; max-height: 100vh; overflow-y: auto; }
#result-image img, #sheet img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
#result-video video, #sheet-video video { image-rendering: pixelated; }
/* the player rounds to whole seconds ("0:00 / 0:00" for a 9-frame clip); the status line gives the length */
#result-video .time, #sheet-video .time { display: none; }
#history video, #cells video { object-fit: contain !important; }  /* object_fit reaches only images */
/* Gradio narrows the grid to the number of items: two images would fill the row, taller than the gallery */
#images .grid-container, #history .grid-container, #cells .grid-container {
    grid-template-columns: repeat(4, minmax(0, 1fr)) !important; }
#status progress.job-progress { width: 100%; height: 14px; display: block; margin-bottom: 4px; }
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


def _selected_index(evt: gr.SelectData) -> int:
    index = getattr(evt, "index", None)
    if not isinstance(index, int) or isinstance(index, bool):
        raise gr.Error("Select an image slot by clicking its picture.")
    return index


def _shift(ui: Handlers, offset: int):
    def handler(gallery, selected, prompt):
        return ui.shift_slot(gallery, selected, offset, prompt)

    return handler


def build(ui: Handlers) -> gr.Blocks:
    """The page for `ui`'s studio: inputs and settings on the left, with Generate / Cancel in a bar that stays
    in view; status, result, CFG grid and history on the right."""
    studio = ui.studio
    preset_choices = [(p.name, p.key) for p in studio.presets]
    with gr.Blocks(title="VINO Studio", delete_cache=(3600, 3600)) as demo:
        header = gr.Markdown(ui.header(), elem_id="model-info")
        selected = gr.Number(None, visible=False, precision=0, label="Selected slot (0-based)")
        history = gr.BrowserState([], storage_key=HISTORY_STORAGE_KEY)  # kept across reloads of the page
        draft = gr.BrowserState(None, storage_key=DRAFT_STORAGE_KEY)  # the inputs as edited, restored on a reload
        grid_entries = gr.State([])
        picked = gr.State(None)
        with gr.Row():
            with gr.Column(scale=5):
                with gr.Row():
                    preset = gr.Dropdown(preset_choices, value=studio.presets[0].key, label="Task preset", scale=3,
                                         elem_id="preset")
                    load_example = gr.Button("Load example", scale=1)
                preset_info = gr.Markdown(elem_id="preset-info")
                gallery = gr.Gallery(
                    label=f"Images (drag & drop, up to {MAX_IMAGES}) — numbered as the model sees them",
                    type="filepath",
                    interactive=True,
                    columns=4,
                    height=220,
                    file_types=["image"],
                    allow_preview=False,
                    object_fit="contain",
                    elem_id="images",
                )
                with gr.Row():
                    slot_buttons = [
                        gr.Button(text, size="sm", interactive=False, elem_id=elem)
                        for text, elem in SLOT_BUTTONS
                    ]
                video = gr.Video(label="Video 1 (optional)", sources=["upload"], height=200, elem_id="video")
                video_info = gr.Markdown()
                with gr.Row(elem_classes="chip"):
                    chips = [gr.Button(f"Image {i + 1}", size="sm", visible=False) for i in range(MAX_IMAGES)]
                    chips.append(gr.Button("Video 1", size="sm", visible=False))
                prompt = gr.Textbox(label="Instruction (click a chip to insert its name)", lines=3, elem_id="prompt")
                ref_check = gr.HTML(elem_id="ref-check")
                with gr.Accordion("Rewrite with the VLM (understanding then generation)", open=False):
                    rewrite_btn = gr.Button("Rewrite into a detailed caption", elem_id="rewrite")
                    rewritten = gr.Textbox(label="Rewritten caption (editable)", lines=3, elem_id="rewritten")
                    use_rewritten = gr.Button("Use this caption")
                with gr.Accordion("Settings", open=True):
                    controls = SettingsControls.create(lambda: studio.attention_backends)
                    dice = gr.Button("🎲 Random seed", size="sm")
                    profile = gr.Dropdown(
                        sorted(PROFILES),
                        value=studio.profile_name,
                        label="Memory profile (changing it reloads the model)",
                        interactive=studio.profile_name != "zerogpu",
                    )
                with gr.Column(elem_id="actions"):
                    estimate = gr.Markdown(elem_id="estimate")
                    with gr.Row():
                        generate = gr.Button("Generate", variant="primary", elem_id="generate")
                        cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
                job_handle = gr.Textbox("", visible=False, label="Job id (callers without a session: from the status)")
            with gr.Column(scale=5, elem_id="result-pane"):
                status = gr.HTML(elem_id="status")
                with gr.Tabs():
                    with gr.Tab("Result"):
                        result_image = gr.Image(label="Result", type="filepath", interactive=False,
                                                height=RESULT_HEIGHT_PX, elem_id="result-image")
                        result_video = gr.Video(label="Result video", interactive=False, visible=False, autoplay=True,
                                                loop=True, height=RESULT_HEIGHT_PX, elem_id="result-video")
                        downloads = gr.File(
                            label="Downloads (media with settings, task-file sidecar, zip with references)",
                            file_count="multiple",
                            elem_id="downloads",
                        )
                    with gr.Tab("Compare CFG"):
                        with gr.Row():
                            text_values = gr.Textbox("3, 5, 7", label="Text CFG values", elem_id="text-cfg-values")
                            image_values = gr.Textbox("1", label="Image CFG values", elem_id="image-cfg-values")
                        grid_btn = gr.Button("Run the grid (same seed and inputs)", elem_id="grid")
                        sheet_image = gr.Image(label="Contact sheet", type="filepath", interactive=False,
                                               elem_id="sheet")
                        sheet_video = gr.Video(label="Tiles playing in sync", interactive=False, visible=False,
                                               autoplay=True, loop=True, elem_id="sheet-video")
                        grid_cells = gr.Gallery(label="Cells (click one to open, keep or export it)", columns=4,
                                                height=200, allow_preview=False, object_fit="contain", elem_id="cells")
                    with gr.Tab("History"):
                        history_gallery = gr.Gallery(
                            label="This session (click one to open, keep or reuse it)",
                            columns=4,
                            height=260,
                            allow_preview=False,
                            object_fit="contain",
                            elem_id="history",
                        )
                        reuse_drop = gr.File(label="…or drop a PNG / MP4 / .json made by VINO Studio",
                                             file_types=[".png", ".mp4", ".json"])
                picked_files = gr.File(label="Selected item", file_count="multiple")
                picked_settings = gr.Code(label="Its inputs and settings", language="json")
                with gr.Row():
                    keep = gr.Button("Keep in history")
                    reuse = gr.Button("Reuse its settings", elem_id="reuse")

        settings = controls.components()
        inputs = [prompt, gallery, video, *settings]
        preset_outputs = [prompt, gallery, video, preset_info, *settings]
        fill_outputs = [prompt, gallery, video, *settings, preset, preset_info, status]
        result_outputs = [status, result_image, result_video, downloads, picked]
        quiet = {"show_progress_on": [status]}  # loading and error marks only on the message area, never an input

        gallery.upload(user_errors(ui.normalise), gallery, gallery, api_name="add_images", **quiet)
        gallery.select(user_errors(_selected_index), None, selected, api_visibility="private")
        selected.change(ui.slot_buttons, selected, slot_buttons, api_name=False, show_progress="hidden")
        for button, offset, name in zip(slot_buttons, (-1, 1, 0), ("move_earlier", "move_later", "remove_image")):
            button.click(user_errors(_shift(ui, offset)), [gallery, selected, prompt], [gallery, prompt, selected],
                         api_name=name, **quiet)
        video.change(user_errors(ui.video_info), video, video_info, api_name="check_video", **quiet)
        for source in (gallery, video):
            source.upload(user_errors(ui.follow_inputs), [controls.task, gallery, video],
                          [controls.task, preset, preset_info], api_name=False)
        controls.task.input(lambda: (None, ""), None, [preset, preset_info], api_name=False)  # no longer the preset's
        for source in (prompt, gallery, video):
            source.change(user_errors(ui.check), [prompt, gallery, video], [ref_check, *chips],
                          api_name="check_references" if source is prompt else False, show_progress="hidden")
        for i, chip in enumerate(chips):
            name = f"Image {i + 1}" if i < MAX_IMAGES else "Video 1"
            chip.click(None, prompt, prompt, js=_insert_js(name))
        estimate_fn = user_errors(settings_endpoint(ui.estimate, ["prompt", "gallery", "video"]))
        for control in inputs:
            control.change(estimate_fn, inputs, estimate, api_name="estimate" if control is prompt else False,
                           show_progress="hidden")
            control.change(ui.draft, inputs, draft, api_name=False, show_progress="hidden", queue=False)
        for control in (*controls.release_inputs(), gallery, video):
            control.change(user_errors(ui.release_view), [*controls.release_inputs(), gallery, video],
                           controls.released(), api_name=False, show_progress="hidden")
        preset_fn = user_errors(ui.apply_preset)
        load_example.click(preset_fn, preset, preset_outputs, api_name="apply_preset", **quiet)
        preset.input(preset_fn, preset, preset_outputs, api_name=False, **quiet)
        profile.change(user_errors(ui.switch_profile), profile, [header, status], api_name="switch_profile",
                       concurrency_id="gpu", **quiet)
        dice.click(lambda: random.randint(0, MAX_SEED), None, controls.seed, api_name="random_seed")
        gpu = GpuTime(ui.job, studio.estimate, grid_values)
        rewrite = on_gpu(user_errors(ui.rewrite), user_errors(gpu.rewrite))
        rewrite_btn.click(rewrite, [prompt, gallery, video], rewritten, api_name="rewrite", concurrency_id="gpu",
                          **quiet)
        use_rewritten.click(None, rewritten, prompt, js="(text) => text")

        run = on_gpu(user_errors(settings_endpoint(ui.generate, ["prompt", "gallery", "video"])),
                     user_errors(gpu.generate))
        gen_event = generate.click(run, inputs, result_outputs, api_name="generate", concurrency_id="gpu", **quiet)
        gen_event.success(user_errors(ui.history), [history, picked], [history, history_gallery], api_name=False)
        grid_leading = ["text_values", "image_values", "prompt", "gallery", "video"]
        grid = on_gpu(user_errors(settings_endpoint(ui.cfg_grid, grid_leading)), user_errors(gpu.cfg_grid))
        grid_event = grid_btn.click(grid, [text_values, image_values, *inputs],
                                    [status, sheet_image, sheet_video, grid_cells, grid_entries], api_name="cfg_grid",
                                    concurrency_id="gpu", **quiet)

        # On ZeroGPU a run lives in a worker process: Cancel closes the call there (Studio.stream then stops it).
        closes = [gen_event, grid_event] if studio.profile_name == "zerogpu" else None
        cancel.click(user_errors(ui.cancel), job_handle, status, api_name="cancel", concurrency_limit=None,
                     concurrency_id="cancel", cancels=closes, show_progress="hidden")
        grid_cells.select(user_errors(ui.open_entry), grid_entries, [picked, picked_files, picked_settings],
                          api_visibility="private", **quiet)
        history_gallery.select(user_errors(ui.open_entry), history, [picked, picked_files, picked_settings],
                               api_visibility="private", **quiet)
        keep.click(user_errors(ui.history), [history, picked], [history, history_gallery], api_name=False)
        reuse.click(user_errors(ui.reuse), picked, fill_outputs, api_name=False, **quiet)
        reuse_drop.upload(user_errors(ui.reuse_file), reuse_drop, fill_outputs, api_name="reuse_settings", **quiet)
        demo.load(user_errors(ui.restore), [preset, draft], fill_outputs, api_name=False, **quiet)
        demo.load(user_errors(ui.history), history, [history, history_gallery], api_name=False, **quiet)
        demo.load(user_errors(ui.attention_choices), None, controls.attention, api_name=False, show_progress="hidden")
        if not studio.ready:  # loading in the background: the header says so until it is loaded
            demo.load(ui.loaded_header, None, header, api_name=False, concurrency_limit=None, **quiet)
    return demo
