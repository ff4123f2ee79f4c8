"""Heatmaps: tile predictions onto a cell grid (overlaps averaged, masked to tissue,
optionally smoothed) and rendered as RGBA per class, as the benign/malignant roll-up, or as
the arg-max class map. Qt-free; the GUI calls ``HeatmapGrid.add`` as batches arrive and
``render`` again.

    hm = HeatmapGrid(grid, bundle.classes, size=source.dimensions)
    hm.add(batch.tiles, batch.probs[key])
    img = render(hm, "ductal_carcinoma", opacity=0.6, threshold=0.2, smooth=1.0,
                 size=thumbnail.size)
"""

from pvdesk.heatmap.figure import figure
from pvdesk.heatmap.grid import ARGMAX, ROLLUP, HeatmapGrid
from pvdesk.heatmap.render import argmax_layer, colour_layer, fit_to, overlay, render, rollup_layer

__all__ = [
    "ARGMAX", "ROLLUP", "HeatmapGrid", "argmax_layer", "colour_layer", "figure", "fit_to", "overlay",
    "render", "rollup_layer",
]
