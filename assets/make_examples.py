"""Draw the studio's example references (CC0, made by the project): `python -m assets.make_examples`.

    examples/portrait.png   a cartoon person, 512x512
    examples/hat.png        a red hat on white, 384x384
    examples/beach.png      a beach at noon, 768x432
    examples/ball.mp4       a ball rolling along the beach, 33 frames, 424x240, H.264
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vino_app.export import save_mp4

OUT = Path(__file__).resolve().parent / "examples"


def portrait() -> Image.Image:
    image = Image.new("RGB", (512, 512), (214, 228, 240))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((136, 300, 376, 520), 60, fill=(52, 101, 164))  # shirt
    draw.ellipse((176, 110, 336, 290), fill=(238, 196, 160))  # face
    draw.ellipse((216, 180, 236, 200), fill=(40, 40, 40))
    draw.ellipse((276, 180, 296, 200), fill=(40, 40, 40))
    draw.arc((226, 210, 286, 260), 20, 160, fill=(150, 60, 60), width=5)
    draw.pieslice((170, 90, 342, 200), 180, 360, fill=(90, 60, 30))  # hair
    return image


def hat() -> Image.Image:
    image = Image.new("RGB", (384, 384), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((42, 220, 342, 290), fill=(170, 20, 30))  # brim
    draw.rounded_rectangle((112, 110, 272, 256), 30, fill=(200, 30, 40))  # crown
    draw.rectangle((112, 210, 272, 236), fill=(30, 30, 30))  # band
    return image


def beach(ball_x: float | None = None) -> Image.Image:
    width, height = 768, 432
    sky = np.linspace([120, 180, 240], [200, 230, 250], height // 2)
    pixels = np.zeros((height, width, 3))
    pixels[: height // 2] = sky[:, None]
    pixels[height // 2 : height * 2 // 3] = (40, 110, 170)  # sea
    pixels[height * 2 // 3 :] = (230, 205, 150)  # sand
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((600, 40, 680, 120), fill=(255, 230, 120))
    if ball_x is not None:
        x, y = int(ball_x * width), height * 5 // 6
        draw.ellipse((x - 30, y - 30, x + 30, y + 30), fill=(250, 120, 20))
    return image


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    portrait().save(OUT / "portrait.png")
    hat().save(OUT / "hat.png")
    beach().save(OUT / "beach.png")
    frames = np.stack([np.asarray(beach(0.1 + 0.8 * t / 32).resize((424, 240))) for t in range(33)])
    save_mp4(frames, OUT / "ball.mp4")


if __name__ == "__main__":
    main()
