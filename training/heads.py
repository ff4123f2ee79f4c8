"""Heads on frozen CLIP embeddings: logistic regression and a small MLP.

- Linear: scikit-learn LogisticRegression (multinomial, lbfgs) for each C in a log grid;
  the C with the best validation macro-F1 (then log-loss) is kept, refitted on train only,
  and exported through pvdesk's ``linear_tensors_from_sklearn`` (softmax of the exported
  Linear equals ``predict_proba``). Without a validation set, C comes from a stratified
  3-fold cross-validation on train when every class has 3 images, else C=1.
- MLP: Linear(D, hidden), ReLU, Dropout, Linear(hidden, C), the layout pvdesk's clip-mlp
  kind loads; cross-entropy with label smoothing, Adam (weight decay 1e-5), StepLR; the
  epoch with the best validation macro-F1 is kept (the last one without validation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from pvdesk import heavy
from training.metrics import quick_scores

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass
class LinearResult:
    model: object  # fitted LogisticRegression
    C: float
    scores: dict = field(default_factory=dict)  # C -> {macro_f1, log_loss} (validation)
    selection: str = "validation"


def _fit_lr(X, y, C, seed):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=3000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return clf


def train_linear(Xtr, ytr, Xval, yval, n_classes: int, seed: int = 0,
                 grid=C_GRID, reporter=None) -> LinearResult:
    """Fit the logistic regression; labels are class indices 0..n_classes-1."""
    def score(clf, X, y):
        p = proba(clf, X, n_classes)
        s = quick_scores(y, p, n_classes)
        s["log_loss"] = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1)).mean())
        return s

    scores: dict[float, dict] = {}
    selection = "validation"
    if len(yval):
        folds = [(Xtr, ytr, Xval, yval)]
    else:
        counts = np.bincount(ytr, minlength=n_classes)
        if counts.min() >= 3:
            from sklearn.model_selection import StratifiedKFold

            skf = StratifiedKFold(3, shuffle=True, random_state=seed)
            folds = [(Xtr[a], ytr[a], Xtr[b], ytr[b]) for a, b in skf.split(Xtr, ytr)]
            selection = "3-fold cross-validation on train (no validation set)"
        else:
            folds = []
            selection = "default C=1: no validation set, too few images for cross-validation"
    if reporter:
        reporter.stage("train", len(grid) if folds else 1)
    if folds:
        for i, C in enumerate(grid, start=1):
            per = [score(_fit_lr(a, b, C, seed), c, d) for a, b, c, d in folds]
            scores[C] = {k: float(np.mean([s[k] for s in per])) for k in per[0]}
            if reporter:
                reporter.step(i, len(grid), loss=scores[C]["log_loss"])
        best = max(grid, key=lambda C: (scores[C]["macro_f1"], -scores[C]["log_loss"]))
    else:
        best = 1.0
    model = _fit_lr(Xtr, ytr, best, seed)
    return LinearResult(model, best, scores, selection)


def proba(clf, X, n_classes):
    """predict_proba with a column for every class index (absent classes get 0)."""
    p = clf.predict_proba(X)
    out = np.zeros((len(X), n_classes))
    out[:, [int(c) for c in clf.classes_]] = p
    return out


@dataclass
class MlpConfig:
    hidden: int = 512
    dropout: float = 0.2
    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    step_size: int = 20
    gamma: float = 0.5


def train_mlp(Xtr, ytr, Xval, yval, n_classes: int, cfg: MlpConfig, seed: int = 0,
              reporter=None):
    """Returns (head module in eval mode, history list, best epoch)."""
    torch = heavy.torch()
    nn = torch.nn

    from pvdesk.models.heads import mlp_head

    torch.manual_seed(seed)
    head = mlp_head(Xtr.shape[1], cfg.hidden, n_classes, cfg.dropout)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    eval_loss = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(Xtr).float(), torch.from_numpy(ytr).long()
    xv, yv = torch.from_numpy(Xval).float(), torch.from_numpy(yval).long()
    gen = torch.Generator().manual_seed(seed)
    history, best, best_state, started = [], (-1.0, 0.0), None, time.monotonic()
    best_epoch = 0
    n = len(xt)
    steps = max(1, -(-n // cfg.batch_size))
    if reporter:
        reporter.stage("train", cfg.epochs)
    for epoch in range(1, cfg.epochs + 1):
        head.train()
        order = torch.randperm(n, generator=gen)
        tot, tot_smoothed, correct = 0.0, 0.0, 0
        for i in range(steps):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            logits = head(xt[idx])
            loss = loss_fn(logits, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            # the curve shows plain cross-entropy, like the validation loss; the smoothed
            # loss that is optimised is kept beside it
            tot += float(eval_loss(logits.detach(), yt[idx])) * len(idx)
            tot_smoothed += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yt[idx]).sum())
        sched.step()
        rec = {"epoch": epoch, "train_loss": tot / n, "train_acc": correct / n,
               "train_loss_smoothed": tot_smoothed / n, "lr": opt.param_groups[0]["lr"]}
        head.eval()
        with torch.no_grad():
            if len(xv):
                lv = head(xv)
                s = quick_scores(yval, lv.softmax(1).numpy(), n_classes)
                rec.update(val_loss=float(eval_loss(lv, yv)), val_acc=s["accuracy"],
                           val_macro_f1=s["macro_f1"])
        key = ((rec["val_macro_f1"], -rec["val_loss"]) if len(xv) else (epoch, 0.0))
        improved = key > best
        if improved:
            best, best_epoch = key, epoch
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        history.append(rec)
        if reporter:
            reporter.step(epoch, cfg.epochs, loss=rec["train_loss"])
            spent = time.monotonic() - started
            reporter.epoch(**rec, epochs=cfg.epochs, improved=improved, best_epoch=best_epoch,
                           best_val_macro_f1=best[0] if len(xv) else None,
                           elapsed_s=round(spent, 2),
                           eta_s=round(spent / epoch * (cfg.epochs - epoch), 1))
    head.load_state_dict(best_state)
    return head.eval(), history, best_epoch
