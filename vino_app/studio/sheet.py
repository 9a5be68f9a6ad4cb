"""Contact sheets for CFG grids, composed with moviepy: cells tiled in rows and columns with a label above each. For
videos the tiles play in sync; an image grid is the sheet's one frame."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..export import VIDEO_FPS

LABEL_HEIGHT = 18
GAP = 4
MIN_CELL_WIDTH = 128  # small cells are enlarged (nearest neighbour) so their labels fit
WHITE = (255, 255, 255)


def label_banner(label: str, width: int) -> np.ndarray:
    """Dark text on white, uint8 `[LABEL_HEIGHT, width, 3]`."""
    banner = Image.new("RGB", (width, LABEL_HEIGHT), WHITE)
    ImageDraw.Draw(banner).text((2, 3), label, fill=(20, 20, 20), font=ImageFont.load_default())
    return np.asarray(banner)


def contact_sheet(cells: list[np.ndarray], labels: list[str], columns: int, fps: int = VIDEO_FPS):
    """Tile uint8 cells `[F, H, W, 3]` (same shapes; enlarged to at least `MIN_CELL_WIDTH`) row-major into `columns`
    columns on white, each labelled, with `GAP` pixels right of and below each tile.

    Returns a moviepy clip of F frames at `fps`, `rows * (H + label + gap)` x `columns * (W + gap)` (each side
    rounded up to even for H.264)."""
    from moviepy import ColorClip, ImageClip, ImageSequenceClip, clips_array, vfx

    if not cells or len(cells) != len(labels):
        raise ValueError("contact_sheet needs one label per cell and at least one cell")
    scale = -(-MIN_CELL_WIDTH // cells[0].shape[2])
    if scale > 1:
        cells = [cell.repeat(scale, axis=1).repeat(scale, axis=2) for cell in cells]
    width = cells[0].shape[2]
    tiles = []
    for cell, label in zip(cells, labels):
        picture = ImageSequenceClip(list(cell), fps=fps)
        banner = ImageClip(label_banner(label, width)).with_duration(picture.duration)
        tile = clips_array([[banner], [picture]]).with_effects([vfx.Margin(right=GAP, bottom=GAP, color=WHITE)])
        tiles.append(tile)
    blank = ColorClip(tiles[0].size, WHITE, duration=tiles[0].duration)
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    rows[-1] += [blank] * (columns - len(rows[-1]))
    sheet = clips_array(rows)
    return sheet.with_effects([vfx.Margin(right=sheet.w % 2, bottom=sheet.h % 2, color=WHITE)])

