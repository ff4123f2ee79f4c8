"""A heatmap layer over the slide thumbnail with a legend strip, for PNG files.

Used by ``pvdesk predict``; the GUI draws its own legend. The strip names the model and the
layer, states what colour and opacity mean (a class layer is drawn with full colour at
``vmax``, by default the layer's largest probability but at least ``MIN_VMAX``, and the
legend says so), and says UNTRAINED in red when it applies. Text wraps to the image width.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pvdesk.heatmap.grid import ARGMAX, ROLLUP, HeatmapGrid
from pvdesk.heatmap.render import overlay, render
from pvdesk.taxonomy import hex_to_rgb

RED = (200, 0, 0)
INK = (20, 20, 20)
MIN_VMAX = 0.2  # a class layer never stretches probabilities below this to full colour
MAX_LEGEND = 24  # class swatches at most in the arg-max legend


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without the scalable default font
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + ([line] if line else [])


def class_vmax(heatmap: HeatmapGrid, layer: str, smooth: float = 0.0) -> tuple[float, float]:
    """(probability drawn at full colour, largest probability of the layer)."""
    v = heatmap.values(layer, smooth)
    top = float(np.nanmax(v)) if np.isfinite(v).any() else 0.0
    return max(top, MIN_VMAX), top


def figure(thumbnail: Image.Image, heatmap: HeatmapGrid, layer: str, model: str,
           trained: bool = True, opacity: float = 0.6, smooth: float = 0.0,
           threshold: float = 0.0) -> Image.Image:
    """``layer`` rendered over ``thumbnail`` with a legend strip below it (RGB)."""
    w, h = thumbnail.size
    vmax = 1.0
    tax = heatmap.taxonomy
    pair = tax.rollup_pair or ("", "")
    if layer == ARGMAX:
        note = "most probable class per tile"
    elif layer == ROLLUP:
        note = (f"P({pair[1]}), {pair[0]} + {pair[1]} probabilities summed per group")
    else:
        vmax, top = class_vmax(heatmap, layer, smooth)
        note = (f"P({layer}): opacity grows with probability, full colour at P >= {vmax:.2f} "
                f"(largest on this slide {top:.2f})")
    body = overlay(thumbnail, render(heatmap, layer, opacity, threshold, smooth, (w, h), vmax))
    fs = max(11, min(22, w // 40))
    font, small = _font(fs), _font(max(10, fs - 3))
    step = int(fs * 1.5)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text = [(line, INK, font) for line in _wrap(probe, f"{model} - {layer}", font, w - 12)]
    text += [(line, INK, small) for line in _wrap(probe, note, small, w - 12)]
    warn = [] if trained else [(line, RED, font) for line in _wrap(
        probe, "UNTRAINED MODEL (random weights): not a prediction", font, w - 12)]
    classes = heatmap.classes if layer == ARGMAX else ()
    more = max(0, len(classes) - MAX_LEGEND)
    if more:  # a long taxonomy: the first classes, then how many more
        classes = classes[:MAX_LEGEND - 1]
        more += 1
        text.append((f"... and {more} more classes (their own PNGs)", INK, small))
    per_row = max(1, w // (fs * 11))
    legend_rows = -(-len(classes) // per_row) if classes else (1 if layer == ROLLUP else 0)
    out = Image.new("RGB", (w, h + step * (len(text) + len(warn) + legend_rows) + 8), "white")
    out.paste(body, (0, 0))
    d = ImageDraw.Draw(out)
    y = h + 4
    for line, colour, f in text:
        d.text((6, y), line, fill=colour, font=f)
        y += step
    if classes:
        col_w = w // per_row
        for i, c in enumerate(classes):
            x0, y0 = 6 + (i % per_row) * col_w, y + (i // per_row) * step
            d.rectangle((x0, y0 + 2, x0 + fs, y0 + fs + 2), fill=hex_to_rgb(tax.colour_of(c)))
            d.text((x0 + fs + 6, y0), tax.display(c), fill=INK, font=small)
    elif layer == ROLLUP:
        b, m = (hex_to_rgb(tax.colour_of(g)) for g in pair)
        x0 = 6 + int(probe.textlength(f"{pair[0]} ", font=small))
        bar_w = max(20, min(300, w - x0 - int(probe.textlength(f" {pair[1]}", font=small)) - 12))
        for i in range(bar_w):
            q = i / max(bar_w - 1, 1)
            d.line((x0 + i, y + 2, x0 + i, y + fs),
                   fill=tuple(round(b[k] * (1 - q) + m[k] * q) for k in range(3)))
        d.text((6, y), pair[0], fill=INK, font=small)
        d.text((x0 + bar_w + 4, y), pair[1], fill=INK, font=small)
    y += legend_rows * step
    for line, colour, f in warn:
        d.text((6, y), line, fill=colour, font=f)
        y += step
    return out
