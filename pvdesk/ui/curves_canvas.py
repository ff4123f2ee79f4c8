"""Live train/validation loss and accuracy curves: a matplotlib canvas in the retrain dialog.

A message (before the first epoch) goes in the figure's title line, above both plots, where
it cannot run over an axis; a head without epochs (the linear probe) shows its phases
instead of this canvas (pvdesk.ui.retrain_phases).
"""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from pvdesk.ui.glossary import tip

TRAIN_COLOUR = "#1f77b4"
VAL_COLOUR = "#ff7f0e"


class CurvesCanvas(FigureCanvasQTAgg):
    def __init__(self, parent=None):
        self.figure = Figure(figsize=(6.4, 2.6), dpi=90, layout="constrained")
        super().__init__(self.figure)
        self.setParent(parent)
        self.loss_ax, self.acc_ax = self.figure.subplots(1, 2)
        self.setMinimumHeight(200)
        tip(self, "loss", "epochs", "validation",
            before="Left: loss (lower is better). Right: the share of tiles called correctly. "
                   "Blue: training tiles; orange: validation images.")
        self.clear()

    def _frame(self) -> None:
        for ax, name in ((self.loss_ax, "loss"), (self.acc_ax, "accuracy")):
            ax.set_xlabel("epoch", fontsize=8)
            ax.set_ylabel(name, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        self.acc_ax.set_ylim(-0.02, 1.02)

    def clear(self, message: str = "Curves appear after the first epoch.") -> None:
        for ax in (self.loss_ax, self.acc_ax):
            ax.cla()
        self._frame()
        self.message = message
        self.figure.suptitle(message, fontsize=9, color="#444444")
        self.draw_idle()

    def show_curves(self, curves: dict[str, list]) -> None:
        """``curves``: epoch, train_loss, val_loss, train_acc, val_acc lists (None = gap)."""
        ep = curves.get("epoch") or []
        if not ep:
            return
        for ax in (self.loss_ax, self.acc_ax):
            ax.cla()
        self._frame()
        self.message = ""
        self.figure.suptitle("")
        for ax, key in ((self.loss_ax, "loss"), (self.acc_ax, "acc")):
            for split, colour, label in (("train", TRAIN_COLOUR, "train"),
                                         ("val", VAL_COLOUR, "validation")):
                ys = curves.get(f"{split}_{key}") or []
                pts = [(x, y) for x, y in zip(ep, ys, strict=False) if y is not None]
                if pts:
                    xs, vs = zip(*pts, strict=True)
                    ax.plot(xs, vs, marker="o", markersize=3, color=colour, label=label)
            if ax.lines:
                ax.legend(fontsize=7, loc="best")
        if len(ep) == 1:
            for ax in (self.loss_ax, self.acc_ax):
                ax.set_xlim(ep[0] - 1, ep[0] + 1)
        self.draw_idle()
