"""Boundary slicing, query positions, the RoPE timeline, sigmas and the guidance rules."""

import logging

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from vino_app.encoder import boundary_positions, read_vlm_video, vlm_inputs
from vino_app.guidance import cfg_branches, combine_guidance
from vino_app.pipeline import flow_sigmas
from vino_app.prompt import chat_text


def test_boundary_positions_collapse_video_groups():
    S, E = 3, 4
    # Image 1, Image 2, then a video with three timestamp groups
    ids = torch.tensor([9, S, 6, E, 9, S, 6, E, 9, S, 7, E, 9, S, 7, E, 9, S, 7, E, 9])
    starts, ends = boundary_positions(ids, S, E, num_images=2)
    assert starts == [1, 5, 9] and ends == [3, 7, 19]
    # images only: n starts, n ends + the last one repeated (the release keeps it; it is unused)
    starts, ends = boundary_positions(ids[:9], S, E, num_images=2)
    assert starts == [1, 5] and ends == [3, 7, 7]


def test_video_prompt_has_timestamp_groups_and_one_boundary_pair(pipe, media, caplog):
    text = chat_text("Turn Video 1 purple", 0, True)
    with caplog.at_level(logging.WARNING):
        inputs = vlm_inputs(pipe.processor, text, [], read_vlm_video(str(media["video"])))
    # qwen-vl-utils' cap of the release's budget
    assert not caplog.records, "reading a video for the VLM warns: " + caplog.text
    cfg = pipe.condition_encoder.mm_encoder.config
    ids = inputs["input_ids"][0]
    groups = int((ids == cfg.vision_start_token_id).sum())
    assert groups == 4  # 8 sampled frames, 2 per temporal patch
    decoded = pipe.processor.tokenizer.decode(ids)
    assert "<0.0 seconds><|vision_start|>" in decoded
    with torch.no_grad():
        condition = pipe.condition_encoder(inputs, 0)
    assert condition.starts == [int((ids == cfg.vision_start_token_id).nonzero()[0])]
    assert condition.ends == [int((ids == cfg.vision_end_token_id).nonzero()[-1])]


def test_query_positions_continue_from_last_prompt_position(pipe, media):
    """The language model receives position ids last + [0..Q-1] on all three axes for the queries."""
    encoder = pipe.condition_encoder
    inputs = vlm_inputs(
        pipe.processor, chat_text("Image 1 in the rain", 1, False), [__import__("PIL").Image.open(media["wide"])], None
    )
    seen = {}
    hook = encoder.mm_encoder.model.language_model.register_forward_pre_hook(
        lambda m, a, kw: seen.update(kw), with_kwargs=True
    )
    try:
        with torch.no_grad():
            encoder(inputs, 1)
    finally:
        hook.remove()
    positions = seen["position_ids"]
    prompt, queries = positions[:, 0, : -encoder.num_queries], positions[:, 0, -encoder.num_queries :]
    last = prompt[:, -1:]
    assert torch.equal(queries, last + torch.arange(encoder.num_queries))
    assert not torch.equal(prompt[1], prompt[2])  # the image gives distinct row/column positions
    assert seen["inputs_embeds"].shape[1] == inputs["input_ids"].shape[1] + encoder.num_queries


def test_rope_timeline(pipe):
    transformer = pipe.transformer
    image = (1, 4, 1, 4, 6)  # one latent frame, 2x3 patches
    video = (1, 4, 2, 2, 2)  # two latent frames, 1x1 patch
    target = (1, 4, 2, 4, 4)
    pos = transformer.timeline_positions([image, video], target, "cpu")
    assert pos[0].tolist() == [0, 0, 0]  # start of Image 1
    assert pos[1:7, 0].tolist() == [1] * 6 and pos[1:7, 1:].tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    assert pos[7].tolist() == [2, 0, 0]  # end of Image 1
    assert pos[8].tolist() == [3, 0, 0]  # start of Video 1
    assert pos[9:11, 0].tolist() == [4, 5]
    assert pos[11].tolist() == [6, 0, 0]  # end of Video 1
    assert pos[12:, 0].unique().tolist() == [7, 8] and len(pos) == 12 + 2 * 2 * 2
    # with no references the target sits at t = 0 and the tables equal diffusers' own RoPE
    alone = transformer.timeline_positions([], target, "cpu")
    cos, sin = transformer.rotary_embedding(alone)
    ref_cos, ref_sin = transformer.rope(torch.zeros(target))
    assert torch.allclose(cos, ref_cos) and torch.allclose(sin, ref_sin)


def test_shifted_sigmas():
    scheduler = FlowMatchEulerDiscreteScheduler()
    for shift in (5.0, 7.0):
        scheduler.set_shift(shift)
        scheduler.set_timesteps(sigmas=flow_sigmas(4))
        s = np.linspace(1, 0, 5)
        expected = shift * s / (1 + (shift - 1) * s)
        assert np.allclose(scheduler.sigmas.numpy(), expected, atol=1e-6)


def test_guidance_formulas():
    v_c, v_u, v_ui = torch.tensor([3.0]), torch.tensor([1.0]), torch.tensor([0.5])
    assert combine_guidance([v_c], 5, 1) == v_c
    assert combine_guidance([v_c, v_u], 5, 1) == 1 + 5 * 2
    assert combine_guidance([v_c, v_u, v_ui], 5, 3) == 0.5 + 3 * 0.5 + 5 * 2


def test_which_references_each_branch_sees():
    # text CFG only: the negative keeps the same references
    b = cfg_branches("p", "n", 2, True, False, 7.0, 1.0)
    assert [(x.text, x.image_indices, x.has_video) for x in b] == [("p", [0, 1], True), ("n", [0, 1], True)]
    # image CFG: the image-free branch keeps only the video
    b = cfg_branches("p", "n", 3, True, False, 7.0, 3.0)
    assert (b[2].text, b[2].image_indices, b[2].has_video) == ("n", [], True)
    # base-image editing: the image-free branch keeps the base (last) image
    b = cfg_branches("p", "n", 2, False, True, 5.0, 3.0)
    assert b[2].image_indices == [1] and not b[2].has_video
    # guidance off: one branch
    assert len(cfg_branches("p", "n", 1, False, False, 1.0, 1.0)) == 1
