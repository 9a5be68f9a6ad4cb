"""Contact sheets for CFG grids: cells tiled in rows and columns with a label above each; for videos every frame is
tiled the same way, so the tiles of the resulting MP4 play in sync."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 18
GAP = 4
MIN_CELL_WIDTH = 128  # small cells are enlarged (nearest neighbour) so their labels fit


def contact_sheet(cells: list[np.ndarray], labels: list[str], columns: int) -> np.ndarray:
    """Tile uint8 cells `[F, H, W, 3]` (same shapes; enlarged to at least `MIN_CELL_WIDTH`) row-major into `columns`
    columns on white, each labelled.

    Returns uint8 `[F, rows * (H + label + gap), columns * (W + gap), 3]` (sizes rounded up to even for H.264)."""
    if not cells or len(cells) != len(labels):
        raise ValueError("contact_sheet needs one label per cell and at least one cell")
    scale = -(-MIN_CELL_WIDTH // cells[0].shape[2])
    if scale > 1:
        cells = [cell.repeat(scale, axis=1).repeat(scale, axis=2) for cell in cells]
    frames, height, width, _ = cells[0].shape
    rows = -(-len(cells) // columns)
    cell_h, cell_w = height + LABEL_HEIGHT + GAP, width + GAP
    sheet_h, sheet_w = rows * cell_h + (rows * cell_h) % 2, columns * cell_w + (columns * cell_w) % 2
    sheet = np.full((frames, sheet_h, sheet_w, 3), 255, np.uint8)
    font = ImageFont.load_default()
    banner = Image.new("RGB", (sheet_w, sheet_h), "white")
    draw = ImageDraw.Draw(banner)
    for index, (cell, label) in enumerate(zip(cells, labels)):
        top, left = (index // columns) * cell_h, (index % columns) * cell_w
        draw.text((left + 2, top + 3), label, fill=(20, 20, 20), font=font)
        sheet[:, top + LABEL_HEIGHT : top + LABEL_HEIGHT + height, left : left + width] = cell
    text = np.asarray(banner)
    mask = np.zeros((sheet_h, sheet_w), bool)
    for index in range(len(cells)):
        top, left = (index // columns) * cell_h, (index % columns) * cell_w
        mask[top : top + LABEL_HEIGHT, left : left + cell_w] = True
    sheet[:, mask] = text[mask]
    return sheet
