"""Plain words for the jargon the window shows: one place, used by every tooltip.

``GLOSSARY`` maps a term to its plain explanation (one or two sentences a pathologist reads
without a machine-learning background), optionally a few words for inline use, and the
patterns that find it in a label. ``explain(*terms)`` builds a tooltip; ``tip(widget,
*terms)`` sets one; ``tip_text(widget, text)`` explains whatever terms a (changing) text
shows; ``form_row`` adds a form row whose label and field both explain their terms;
``terms_in(text)`` lists the terms a text shows.
tests/test_ui_screens.py checks that every visible text showing a term carries its tooltip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    title: str  # how the tooltip names it
    plain: str  # the explanation, in plain words
    patterns: tuple[str, ...]  # case-insensitive regular expressions that find it in a text
    short: str = ""  # a few words, for a value's tooltip ("entropy 0.93: <short>")


def _t(title: str, plain: str, *patterns: str, short: str = "") -> Term:
    return Term(title, " ".join(plain.split()), patterns, short)


GLOSSARY: dict[str, Term] = {
    # -- the review queue -------------------------------------------------------------------
    "entropy": _t(
        "Entropy (uncertainty)",
        "How undecided the model is about a tile: near 0 when one class gets almost all the "
        "probability, highest when it is spread evenly over the classes. Sorting by it puts "
        "the tiles the model is least sure of first, where your review helps most.",
        r"\bentropy\b",
        short="how undecided the model is: 0 = sure of one class, higher = split between "
              "classes"),
    "margin": _t(
        "Top-2 margin",
        "The gap between the model's first and second choice for a tile (for example 0.48 "
        "ductal against 0.41 lobular gives 0.07). A small gap means the tile was nearly "
        "called the other class.",
        r"\bmargin\b",
        short="the gap between the first and second choice: small = nearly called the other"),
    "probability": _t(
        "Probability (p)",
        "The model's own score for a class, from 0 to 1; the scores of all classes add up to "
        "1. It is the model's certainty, not a measured accuracy: a model trained on other "
        "slides, or not trained at all, can be confidently wrong.",
        r"^p$", r"\bp\(", r"\bprobabilit", r"\bconfidence\b"),
    # -- evaluation -------------------------------------------------------------------------
    "precision": _t(
        "Precision",
        "Of the images the model called this class, the share that truly were (the positive "
        "predictive value).",
        r"\bprecision\b"),
    "recall": _t(
        "Recall",
        "Of the images that truly are this class, the share the model found (the "
        "sensitivity).",
        r"\brecall\b"),
    "f1": _t(
        "F1",
        "One score for a class that is high only when both its precision and its recall are "
        "high, from 0 (never right) to 1 (perfect).",
        r"\bF1\b"),
    "macro": _t(
        "Macro average",
        "The score worked out for each class separately, then averaged with every class "
        "counting the same, so a rare subtype weighs as much as a common one.",
        r"\bmacro\b"),
    "weighted": _t(
        "Weighted average",
        "The per-class scores averaged with each class counted by how many test images it "
        "has, so common classes dominate.",
        r"\bweighted\b"),
    "support": _t(
        "Support",
        "How many test images truly belong to the class: the denominator of its recall.",
        r"\bsupport\b"),
    "balanced_accuracy": _t(
        "Balanced accuracy",
        "The share of images called correctly, worked out per class and then averaged, so a "
        "common class cannot hide the errors on a rare one.",
        r"\bbalanced accuracy\b"),
    "calibration": _t(
        "Expected calibration error (ECE)",
        "How far the model's stated certainty is from how often it is right: 0 is ideal "
        "(tiles called with 0.80 are right 80% of the time); 0.10 means the stated "
        "certainty is off by 10 points on average.",
        r"\bECE\b", r"\bcalibration\b"),
    "confusion": _t(
        "Confusion matrix",
        "A table of the true class (rows) against the model's call (columns): the diagonal "
        "counts correct calls, every other cell counts one kind of mistake (for example "
        "true lobular called ductal).",
        r"\bconfusion\b"),
    "split": _t(
        "Held-out split",
        "Which images a number was measured on. Images are divided, by patient where known, "
        "into training, validation and test groups; test images are never used to train or "
        "tune the model, so their scores are the honest ones.",
        r"\bheld-out\b", r"\bsplit\b"),
    "validation": _t(
        "Validation images",
        "Images kept out of training and used only to choose the best settings and the best "
        "moment to stop; the final scores come from separate test images.",
        r"\bvalidation\b", r"\bval\b"),
    # -- models -----------------------------------------------------------------------------
    "clip": _t(
        "CLIP",
        "An image model that learnt from hundreds of millions of pictures with captions, so "
        "it can tell how well a tile matches a written description. pvdesk uses it as a "
        "backbone, or zero-shot on its own.",
        r"(?<![\w-])CLIP(?![\w-])"),  # not inside a bundle name (demo-clip-rn50)
    "zeroshot": _t(
        "Zero-shot",
        "CLIP used without training on any labelled tile: it compares each tile with short "
        "written descriptions of the eight subtypes and picks the closest. A first look; "
        "usually less accurate than a model trained on labelled tiles.",
        r"\bzero-?shot\b"),
    "resnet50": _t(
        "ResNet50",
        "A widely used image-recognition network (50 layers deep). pvdesk's ResNet50 models "
        "are trained as a whole on labelled breast tissue tiles.",
        r"(?<![\w-])resnet-?50(?![\w-])"),  # not inside a bundle name (demo-resnet50)
    # -- retraining -------------------------------------------------------------------------
    "backbone": _t(
        "Backbone",
        "The large image model that looks at each tile and turns it into a description in "
        "numbers (what it learnt from many pictures). A head is then trained to name the "
        "subtype from that description.",
        r"\bbackbones?\b"),
    "head": _t(
        "Head",
        "The small last part of a model that turns the backbone's description of a tile into "
        "the eight subtype probabilities. Training only a head is quick and needs few "
        "labelled tiles.",
        r"\bheads?\b"),
    "linear_probe": _t(
        "Linear probe",
        "The simplest head: one weighted sum per class over the backbone's description of a "
        "tile. It trains in one go, in seconds to minutes, has no epochs, and is the safest "
        "choice with few labelled tiles.",
        r"\blinear probe\b", r"\bclip-linear\b"),
    "mlp": _t(
        "MLP head",
        "A head with two steps instead of one weighted sum, so it can learn subtler "
        "combinations than a linear probe. It trains over several epochs, in a few minutes, "
        "and needs more labelled tiles to be trusted.",
        r"\bMLP\b", r"\bclip-mlp\b"),
    "finetune": _t(
        "Fine-tune",
        "Retrains the whole ResNet50, not only a head, so it can adapt to your stain and "
        "scanner. Slowest (a graphics card helps greatly) and needs the most labelled tiles.",
        r"\bfine-?tun"),
    "epochs": _t(
        "Epochs",
        "One epoch is one pass over all training tiles. More epochs let the model learn more, "
        "but too many make it memorise the training tiles; the epoch that scores best on the "
        "validation images is kept.",
        r"\bepochs?\b"),
    "learning_rate": _t(
        "Learning rate",
        "How large a step the model takes each time it adjusts itself to the training tiles. "
        "Too large and training jumps about; too small and it learns slowly. Keep the "
        "default unless you know why.",
        r"\blearning rate\b"),
    "loss": _t(
        "Loss",
        "How wrong the model's probabilities are, on average, on a set of tiles; lower is "
        "better. Validation loss rising while training loss keeps falling means the model is "
        "memorising its training tiles.",
        r"\bloss\b"),
    "embeddings": _t(
        "Embeddings",
        "The backbone's description of each tile as a list of numbers, computed once per "
        "tile; the head then learns from these descriptions instead of the pixels.",
        r"\bembeddings?\b"),
    # -- running a model --------------------------------------------------------------------
    "bundle": _t(
        "Model bundle",
        "A folder that holds one model: its weights, its class list, the tile size it expects "
        "and a record of what it was trained and tested on. pvdesk lists every bundle in its "
        "own models folder and in the folders named in Settings.",
        r"\bbundles?\b"),
    "tile_size": _t(
        "Tile size (µm)",
        "The side of each square tile at the slide's true scale, in micrometres (112 µm is "
        "224 pixels at 0.5 µm per pixel, the scan of a 20x objective). A model sees tissue "
        "best at the size it was trained on: the bundle's default.",
        r"\btile (side|size)\b", r"µm tiles?\b"),
    "batch": _t(
        "Batch size",
        "How many tiles the model looks at together. Larger is faster on a graphics card but "
        "uses more of its memory; lower it if a run stops for lack of memory.",
        r"\bbatch\b"),
    "device": _t(
        "Device",
        "Where the model runs: cuda is an NVIDIA graphics card (fastest), mps the graphics "
        "of an Apple-silicon Mac, cpu the computer's processor (slow but always there); auto "
        "picks the fastest one present.",
        r"\bdevice\b"),
    "tile_cache": _t(
        "Tile cache",
        "Memory kept for slide pieces already read, so panning back is instant. More is "
        "smoother on large slides; the default suits most computers.",
        r"\btile cache\b"),
    # -- the heatmap ------------------------------------------------------------------------
    "layer": _t(
        "Heatmap layer",
        "What the colour over the slide shows: one subtype's probability per tile, the "
        "benign/malignant roll-up, or the class map (each tile in the colour of its most "
        "probable class).",
        r"\blayer\b"),
    "rollup": _t(
        "Benign / malignant roll-up",
        "The four benign subtypes' probabilities added into one benign score, and the four "
        "malignant ones into one malignant score.",
        r"\broll-?up\b"),
    "class_map": _t(
        "Class map",
        "Each tile painted in the colour of its most probable class, as on the legend.",
        r"\bclass map\b"),
    "threshold": _t(
        "Threshold",
        "Tiles whose probability for the shown layer is below this value are left "
        "uncoloured, so only the areas the model is surer about stand out.",
        r"\bthreshold\b", r"\bhide below\b"),
    "opacity": _t(
        "Opacity",
        "How strongly the heatmap covers the tissue: at 0 only the slide shows, at 100 only "
        "the colours.",
        r"\bopacity\b"),
    "colormap": _t(
        "Colour map",
        "The colours used for probabilities from 0 to 1; 'class colour' fades from white to "
        "the class's legend colour, the others are scales readable with colour blindness.",
        r"\bcolou?r ?map\b"),
}

_COMPILED = {k: [re.compile(p, re.IGNORECASE) for p in t.patterns] for k, t in GLOSSARY.items()}


def terms_in(text: str) -> list[str]:
    """The glossary terms ``text`` shows, in glossary order."""
    if not text:
        return []
    return [k for k, pats in _COMPILED.items() if any(p.search(text) for p in pats)]


def explain(*terms: str) -> str:
    """A tooltip explaining ``terms`` (glossary keys), one paragraph each."""
    seen = []
    for t in terms:
        if t not in GLOSSARY:
            raise KeyError(f"{t!r} is not in the glossary")
        if t not in seen:
            seen.append(t)
    return "\n\n".join(f"{GLOSSARY[t].title}: {GLOSSARY[t].plain}" for t in seen)


def tip(widget, *terms: str, before: str = ""):
    """Set ``widget``'s tooltip to ``before`` (a sentence about the control) and the plain
    words for ``terms``; returns the widget."""
    widget.setToolTip("\n\n".join(p for p in (before, explain(*terms)) if p))
    return widget


def form_row(form, text: str, field, *terms: str, before: str = ""):
    """Add a row to the QFormLayout ``form``: a label ``text`` and ``field`` (a widget or a
    layout of widgets), each with the plain words for ``terms``; returns the label."""
    from PySide6.QtWidgets import QLabel, QLayout

    label = QLabel(text)
    tip(label, *terms, before=before)
    fields = [field.itemAt(i).widget() for i in range(field.count())] \
        if isinstance(field, QLayout) else [field]
    fields = [w for w in fields if w is not None]
    for w in fields:
        if not w.toolTip():
            tip(w, *terms, before=before)
    form.addRow(label, field)
    if fields:
        label.setBuddy(fields[0])
    return label


def tip_text(widget, text: str, before: str = "") -> None:
    """Explain whatever glossary terms ``text`` shows (for texts that change)."""
    terms = terms_in(text)
    widget.setToolTip("\n\n".join(p for p in (before, explain(*terms) if terms else "") if p))
