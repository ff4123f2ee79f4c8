"""A heatmap layer over the slide thumbnail with a legend strip, for PNG files.

Used by ``pvdesk predict``; the GUI draws its own legend. The strip names the model and the
layer, states what colour and opacity mean, and says UNTRAINED in red when it applies.
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from pvdesk.heatmap.grid import ARGMAX, ROLLUP, HeatmapGrid
from pvdesk.heatmap.render import overlay, render
from pvdesk.taxonomy import colour_of, hex_to_rgb

RED = (200, 0, 0)
INK = (20, 20, 20)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without scalable default font
        return ImageFont.load_default()


def _layer_text(layer: str) -> str:
    if layer == ARGMAX:
        return "most probable class per tile (opaque where predicted)"
    if layer == ROLLUP:
        return "P(malignant): blue = benign ... red = malignant"
    return f"P({layer}): opacity proportional to probability, 0 to 1"


def figure(thumbnail: Image.Image, heatmap: HeatmapGrid, layer: str, model: str,
           trained: bool = True, opacity: float = 0.6, smooth: float = 0.0,
           threshold: float = 0.0) -> Image.Image:
    """``layer`` rendered over ``thumbnail`` with a legend strip below it (RGB)."""
    w, h = thumbnail.size
    body = overlay(thumbnail, render(heatmap, layer, opacity, threshold, smooth, size=(w, h)))
    fs = max(12, min(22, w // 45))
    font, small = _font(fs), _font(max(10, fs - 4))
    classes = heatmap.classes if layer == ARGMAX else ()
    per_row = max(1, w // (fs * 12))
    legend_rows = -(-len(classes) // per_row) if classes else (1 if layer == ROLLUP else 0)
    strip = int(fs * 1.6) * (2 + legend_rows) + (int(fs * 1.6) if not trained else 0) + 8
    out = Image.new("RGB", (w, h + strip), "white")
    out.paste(body, (0, 0))
    d = ImageDraw.Draw(out)
    y = h + 4
    d.text((6, y), f"{model}  -  {layer}", fill=INK, font=font)
    y += int(fs * 1.6)
    d.text((6, y), _layer_text(layer), fill=INK, font=small)
    y += int(fs * 1.6)
    if classes:
        col_w = w // per_row
        for i, c in enumerate(classes):
            x0, y0 = 6 + (i % per_row) * col_w, y + (i // per_row) * int(fs * 1.6)
            d.rectangle((x0, y0 + 2, x0 + fs, y0 + fs + 2), fill=hex_to_rgb(colour_of(c)))
            d.text((x0 + fs + 6, y0), c.replace("_", " "), fill=INK, font=small)
        y += legend_rows * int(fs * 1.6)
    elif layer == ROLLUP:
        b, m = (hex_to_rgb(colour_of(g)) for g in ("benign", "malignant"))
        bar_w = min(w - 140, 300)
        for i in range(bar_w):
            q = i / max(bar_w - 1, 1)
            d.line((70 + i, y + 2, 70 + i, y + fs), fill=tuple(
                round(b[k] * (1 - q) + m[k] * q) for k in range(3)))
        d.text((6, y), "benign", fill=INK, font=small)
        d.text((76 + bar_w, y), "malignant", fill=INK, font=small)
        y += int(fs * 1.6)
    if not trained:
        d.text((6, y), "UNTRAINED MODEL (random weights): not a prediction", fill=RED, font=font)
    return out
