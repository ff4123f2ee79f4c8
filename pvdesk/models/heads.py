"""Heads on normalised CLIP image embeddings: zero-shot, linear (logistic regression), MLP.

Every head maps float32 embeddings (N, D) to logits (N, C) and runs in fp32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvdesk import heavy
from pvdesk.errors import ModelError

if TYPE_CHECKING:
    import torch

    from pvdesk.models.bundle import Bundle


def zeroshot_head(class_embeddings: torch.Tensor, logit_scale: torch.Tensor):
    """logits = logit_scale.exp() * cosine(image, class)."""
    nn = heavy.torch().nn

    class ZeroShotHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("class_embeddings", class_embeddings.detach().float().clone())
            self.register_buffer("logit_scale", logit_scale.detach().float().reshape(()).clone())

        def forward(self, emb: torch.Tensor) -> torch.Tensor:
            return self.logit_scale.exp() * emb @ self.class_embeddings.t()

        def export(self) -> dict:
            return {"zeroshot.class_embeddings": self.class_embeddings.cpu().clone(),
                    "zeroshot.logit_scale": self.logit_scale.cpu().clone()}

    return ZeroShotHead()


def _export_prefixed(module) -> dict:
    return {f"head.{k}": v.detach().cpu().clone() for k, v in module.state_dict().items()}


def build_head(bundle: Bundle, tensors: dict, dim: int, where: str):
    """The trained head for clip-linear / clip-mlp, checked against the embedding width."""
    nn = heavy.torch().nn

    from pvdesk.models.tensors import load_into

    c = len(bundle.classes)
    if bundle.kind == "clip-linear":
        w = tensors["head.weight"]
        if w.shape[1] != dim:
            raise ModelError(f"{where}: tensor 'head.weight': {w.shape[1]} columns but the "
                             f"backbone gives {dim}-d embeddings")
        head = nn.Linear(dim, c)
        load_into(head, {"weight": w, "bias": tensors["head.bias"]}, where, "linear head")
    else:
        w0 = tensors["head.0.weight"]
        if w0.shape[1] != dim:
            raise ModelError(f"{where}: tensor 'head.0.weight': {w0.shape[1]} columns but the "
                             f"backbone gives {dim}-d embeddings")
        hidden = w0.shape[0]
        dropout = float(bundle.manifest.get("head", {}).get("dropout", 0.0)) if isinstance(
            bundle.manifest.get("head"), dict) else 0.0
        head = mlp_head(dim, hidden, c, dropout)
        load_into(head, {k[5:]: v for k, v in tensors.items() if k.startswith("head.")},
                  where, "MLP head")
    head.export = lambda: _export_prefixed(head)
    return head.float()


def mlp_head(dim: int, hidden: int, classes: int, dropout: float = 0.0):
    """Linear(D, hidden), ReLU, Dropout, Linear(hidden, C); state keys 0.* and 3.*."""
    nn = heavy.torch().nn

    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(hidden, classes))


def linear_tensors_from_sklearn(clf, classes: list[str], labels=None) -> dict:
    """Tensors for a clip-linear bundle from a fitted sklearn LogisticRegression.

    ``classes`` is the bundle's class order; ``labels`` maps each bundle class to the label
    the classifier was fitted with (default: the class names themselves, or their indices
    when ``clf.classes_`` holds integers). A binary model (one coefficient row) is stored as
    two rows, [-w/2, +w/2] and [-b/2, +b/2], whose softmax equals sklearn's sigmoid.
    """
    import numpy as np
    torch = heavy.torch()

    coef = np.asarray(clf.coef_, dtype=np.float64)
    bias = np.asarray(clf.intercept_, dtype=np.float64)
    fitted = list(clf.classes_)
    if labels is None:
        ints = all(isinstance(x, (int, np.integer)) for x in fitted)
        labels = list(range(len(classes))) if ints else list(classes)
    if coef.shape[0] == 1:
        if len(fitted) != 2:
            raise ModelError("sklearn model: one coefficient row but not two classes")
        coef = np.stack([-coef[0] / 2, coef[0] / 2])
        bias = np.array([-bias[0] / 2, bias[0] / 2])
    rows = []
    for lab in labels:
        if lab not in fitted:
            raise ModelError(f"sklearn model: class {lab!r} was not among the fitted classes "
                             f"{fitted}")
        rows.append(fitted.index(lab))
    if len(rows) != len(fitted):
        raise ModelError(f"field 'classes': {len(classes)} classes listed but the sklearn model "
                         f"has {len(fitted)}")
    return {"head.weight": torch.from_numpy(coef[rows]).float(),
            "head.bias": torch.from_numpy(bias[rows]).float()}
