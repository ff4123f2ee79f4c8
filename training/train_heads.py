"""Training the CLIP heads (clip-linear, clip-mlp) on cached frozen embeddings."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from pvdesk import heavy
from pvdesk.models.weights import plan
from training.backbones import clip_backbone
from training.data.samples import label_indices
from training.embeddings import compute_embeddings, embedding_classifier
from training.export import backbone_part, resolved_backbone
from training.heads import MlpConfig, proba, train_linear, train_mlp


def train_head(args, reporter, classes, parts, device, precision) -> dict:
    base = clip_backbone(args.backbone, args.clip_model, getattr(args, "weights", None))
    described = f"{base.label} ({base.backbone.get('source')} {base.backbone.get('model', '')})"
    if not base.trained:
        reporter.warning(f"backbone {base.label} has random weights: embeddings carry little "
                         "meaning (fine for a demo or a test, not for a real model); the new "
                         "bundle will be marked UNTRAINED")
    if args.input_size and args.input_size != base.input_size:
        reporter.note(f"--input-size is for resnet50; CLIP backbones use their own "
                      f"({base.input_size} px)")
    reporter.note(f"backbone: {described}; device {device}, precision {precision}")
    clf = embedding_classifier(base, device, precision)
    order = parts["train"] + parts["val"] + parts["test"]
    X = compute_embeddings(clf, order, reporter, args.batch_size or 32, args.workers,
                           cache=not args.no_cache)
    a, b = len(parts["train"]), len(parts["train"]) + len(parts["val"])
    Xtr, Xval, Xte = X[:a], X[a:b], X[b:]
    ytr, yval = label_indices(parts["train"], classes), label_indices(parts["val"], classes)
    held = Xte if len(Xte) else Xval
    n = len(classes)
    res: dict = {"described": described, "input_size": base.input_size, "mean": base.mean,
                 "std": base.std, "tile_um": base.tile_um}
    if args.head == "clip-linear":
        from pvdesk.models.heads import linear_tensors_from_sklearn

        lr = train_linear(Xtr, ytr, Xval, yval, n, args.seed, reporter=reporter)
        reporter.note(f"logistic regression: C={lr.C:g} ({lr.selection})")
        res["tensors"] = linear_tensors_from_sklearn(lr.model, classes)
        res["probs"] = proba(lr.model, held, n) if len(held) else None
        res["head"] = {"type": "logistic-regression", "C": lr.C, "selection": lr.selection,
                       "scores": {f"{c:g}": s for c, s in lr.scores.items()}}
        res["config"] = {"C_grid": sorted(lr.scores) or [1.0]}
    else:
        torch = heavy.torch()

        cfg = MlpConfig(**{k: v for k, v in {
            "hidden": args.hidden, "dropout": args.dropout, "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
            "label_smoothing": args.label_smoothing, "step_size": args.step_size,
            "gamma": args.gamma}.items() if v is not None})
        head, history, best = train_mlp(Xtr, ytr, Xval, yval, n, cfg, args.seed, reporter)
        res["tensors"] = {f"head.{k}": v.detach().cpu().clone()
                          for k, v in head.state_dict().items()}
        with torch.no_grad():
            res["probs"] = (head(torch.from_numpy(held)).softmax(1).numpy().astype(np.float64)
                            if len(held) else None)
        res.update(history=history, best_epoch=best)
        res["head"] = {"type": "mlp", "hidden": cfg.hidden, "dropout": cfg.dropout}
        res["config"] = {"mlp": asdict(cfg)}
    res["lineage_part"] = backbone_part(base)
    bb = resolved_backbone(base)
    if plan(base).how == "bundle":  # the backbone lives in the base bundle's weights
        res["tensors"].update({k: v for k, v in clf.export_tensors(True).items()
                               if k.startswith("backbone.")})
        bb["source"] = "bundle"
    res["backbone"] = bb
    return res
