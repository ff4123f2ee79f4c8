"""The class colours stay apart for colour-blind readers and away from H&E's own colours.

Colours are simulated for deuteranopia, protanopia and tritanopia (Machado et al. 2009,
severity 1) and compared in CIELAB (Euclidean Delta E, D65): every pair of labels a reviewer
can give must differ by at least 10 in every vision, and every class colour must stay at
least 10 from eosin and haematoxylin tones so a tinted tile is not mistaken for stain.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pvdesk.taxonomy import (
    CLASS_NAMES,
    GROUPS,
    NON_TISSUE,
    UNCERTAIN,
    Taxonomy,
    colour_of,
    hex_to_rgb,
)

VISIONS = {
    "normal": np.eye(3),
    "deutan": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]]),
    "protan": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                        [-0.003882, -0.048116, 1.051998]]),
    "tritan": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                        [0.004733, 0.691367, 0.303900]]),
}
STAINS = {"eosin": "#e6a1c1", "dark eosin": "#c76b9e", "pale eosin": "#f3d7e4",
          "haematoxylin": "#5b4a8b", "dark haematoxylin": "#3b2f6b"}


def _lin(rgb):
    c = np.asarray(rgb, dtype=float) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(rgb, vision: str = "normal"):
    lin = np.clip(VISIONS[vision] @ _lin(rgb), 0, 1)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                  [0.0193, 0.1192, 0.9505]])
    xyz = (m @ lin) / np.array([0.9505, 1.0, 1.089])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta(a: str, b: str, vision: str) -> float:
    return float(np.linalg.norm(lab(hex_to_rgb(a), vision) - lab(hex_to_rgb(b), vision)))


def test_review_labels_differ_in_every_vision():
    labels = [*CLASS_NAMES, NON_TISSUE, UNCERTAIN]
    worst = min((delta(colour_of(a), colour_of(b), v), a, b, v)
                for a, b in itertools.combinations(labels, 2) for v in VISIONS)
    assert worst[0] >= 10, worst


def test_class_colours_are_not_stain_colours():
    worst = min((delta(colour_of(c), s, v), c, name, v) for c in (*CLASS_NAMES, *GROUPS)
                for name, s in STAINS.items() for v in VISIONS)
    assert worst[0] >= 10, worst


def test_the_benign_malignant_roll_up_is_two_distinct_colours():
    assert all(delta(colour_of("benign"), colour_of("malignant"), v) >= 40 for v in VISIONS)


@pytest.mark.parametrize("k", range(2, 10))
def test_custom_taxonomies_of_2_to_9_classes_pass_the_same_checks(k):
    tax = Taxonomy.from_names([f"class_{i}" for i in range(k)])
    labels = [*tax.names, NON_TISSUE, UNCERTAIN]
    worst = min((delta(tax.colour_of(a), tax.colour_of(b), v), a, b, v)
                for a, b in itertools.combinations(labels, 2) for v in VISIONS)
    assert worst[0] >= 10, worst
    stain = min((delta(tax.colour_of(c), s, v), c, name, v) for c in tax.names
                for name, s in STAINS.items() for v in VISIONS)
    assert stain[0] >= 10, stain
