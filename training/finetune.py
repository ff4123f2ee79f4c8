"""ResNet50 fine-tuning: all layers, cross-entropy with label smoothing, Adam, StepLR.

The best epoch by validation macro-F1 (then lower validation loss) is kept; without a
validation set the last epoch is. Mixed precision (autocast + GradScaler for fp16, bf16
where the GPU has it) runs on CUDA only. A checkpoint is written after every epoch
(:mod:`training.checkpoint`), so rerunning the same command resumes after the last
finished epoch; shuffling and augmentation draw from generators seeded by (seed, epoch),
so a resumed run sees the same batches as an uninterrupted one. The last epoch is not
checkpointed (its model goes straight into the bundle): an interruption while the bundle
is written repeats that epoch only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from pvdesk import heavy
from training.checkpoint import Checkpoints, load_optimizer, optimizer_tensors
from training.data.source import SampleReader
from training.errors import TrainingError
from training.metrics import quick_scores
from training.transforms import augment, normalise


@dataclass
class FinetuneConfig:
    epochs: int = 35
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    step_size: int = 10
    gamma: float = 0.1
    input_size: int = 224
    workers: int = 2
    seed: int = 0


class Stopped(Exception):
    """Training stopped early and can be resumed (``--stop-after`` or an interrupt)."""

    def __init__(self, epoch: int, reason: str):
        super().__init__(reason)
        self.epoch, self.reason = epoch, reason


class _Images:
    """A torch Dataset of (uint8 image, label index); one SampleReader per worker."""

    def __init__(self, samples, labels, size):
        self.samples, self.labels, self.size = samples, labels, size
        self._reader = None

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        torch = heavy.torch()

        if self._reader is None:
            self._reader = SampleReader()
        arr = self._reader.array(self.samples[i], self.size)
        return torch.from_numpy(arr.copy()), int(self.labels[i])


def _loader(samples, labels, cfg, shuffle, epoch=0):
    torch = heavy.torch()
    DataLoader = torch.utils.data.DataLoader

    gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
    return DataLoader(_Images(samples, labels, cfg.input_size), batch_size=cfg.batch_size,
                      shuffle=shuffle, generator=gen if shuffle else None,
                      num_workers=cfg.workers, persistent_workers=False)


def build_model(n_classes: int, start, classes: list[str], seed: int):
    """torchvision ResNet50 for ``n_classes``, loaded from ``start`` (a ResNetStart)."""
    torch = heavy.torch()
    resnet50 = heavy.torchvision().models.resnet50

    from pvdesk.models.randinit import seeded

    with seeded(seed):
        model = resnet50(weights=None, num_classes=n_classes)
    if start.state is not None:
        own = model.state_dict()
        keep_fc = start.classes == classes
        sd = {k: v for k, v in start.state.items()
              if k in own and (keep_fc or not k.startswith("fc.")) and v.shape == own[k].shape}
        missing = [k for k in own if k not in sd and not k.startswith("fc.")]
        if missing:
            raise TrainingError(f"{start.described}: not a ResNet50 checkpoint ({len(missing)} "
                                f"tensor(s) missing, e.g. {missing[0]})")
        model.load_state_dict(sd, strict=False)
    return model.to(memory_format=torch.channels_last)


def predict(model, samples, cfg, mean, std, device, amp_dtype) -> np.ndarray:
    """Class probabilities (N, C) without augmentation."""
    torch = heavy.torch()

    model.eval()
    out = []
    with torch.inference_mode():
        for x, _ in _loader(samples, np.zeros(len(samples), int), cfg, False):
            x = normalise(x.to(device), mean, std).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.split(":")[0], dtype=amp_dtype,
                                enabled=amp_dtype is not None):
                logits = model(x)
            out.append(logits.float().softmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def finetune(train, ytr, val, yval, classes, start, cfg: FinetuneConfig, out, device: str,
             config_hash: str, reporter=None, stop_after: int | None = None, mean=None,
             std=None):
    """Train; returns (best model in eval mode, history, best epoch)."""
    torch = heavy.torch()
    nn = torch.nn

    ck = Checkpoints(out)
    n_classes = len(classes)
    model = build_model(n_classes, start, classes, cfg.seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    cuda = device.startswith("cuda")
    amp_dtype = None
    if cuda:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=cuda and amp_dtype == torch.float16)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    state = {"epoch": 0, "epochs": cfg.epochs, "best_epoch": 0, "best_key": None,
             "history": [], "config_hash": config_hash, "config": asdict(cfg)}
    if ck.exists():
        old = ck.read_state()
        if old.get("config_hash") != config_hash:
            raise TrainingError(f"{ck.state_file}: an interrupted run with a different "
                                "configuration or data is here; pass --fresh to discard it, "
                                "or rerun with the same options to resume")
        last = ck.load(old["last_file"])
        model.load_state_dict({k[6:]: v for k, v in last.items() if k.startswith("model.")})
        load_optimizer(opt, last, old["optimizer"])
        sched.load_state_dict(old["scheduler"])
        if old.get("scaler"):
            scaler.load_state_dict(old["scaler"])
        state = old
        state["epochs"] = cfg.epochs
        if reporter:
            reporter.note(f"resuming after epoch {old['epoch']} of {cfg.epochs} "
                          f"({ck.folder})")
    done_before = state["epoch"]
    steps = max(1, -(-len(train) // cfg.batch_size))
    started = time.monotonic()
    if reporter:
        reporter.stage("train", steps)
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        tot, tot_smoothed, correct, seen = 0.0, 0.0, 0, 0
        for i, (x, y) in enumerate(_loader(train, ytr, cfg, True, epoch), start=1):
            x = augment(x.to(device), gen)
            x = normalise(x, mean, std).contiguous(memory_format=torch.channels_last)
            y = y.to(device)
            with torch.autocast(device.split(":")[0], dtype=amp_dtype,
                                enabled=amp_dtype is not None):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            # the curve shows plain cross-entropy, like the validation loss; the smoothed
            # loss that is optimised is kept beside it
            tot += float(nn.functional.cross_entropy(logits.detach().float(), y)) * len(y)
            tot_smoothed += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            if reporter:
                reporter.step(i, steps, epoch=epoch, loss=float(loss.detach()))
        sched.step()
        rec = {"epoch": epoch, "train_loss": tot / seen, "train_acc": correct / seen,
               "train_loss_smoothed": tot_smoothed / seen, "lr": opt.param_groups[0]["lr"]}
        if len(val):
            p = predict(model, val, cfg, mean, std, device, amp_dtype)
            s = quick_scores(yval, p, n_classes)
            vloss = float(-np.log(np.clip(p[np.arange(len(yval)), yval], 1e-12, 1)).mean())
            rec.update(val_loss=vloss, val_acc=s["accuracy"], val_macro_f1=s["macro_f1"])
            key = [s["macro_f1"], -vloss]
        else:
            key = [epoch, 0.0]
        improved = state["best_key"] is None or key > state["best_key"]
        if improved:
            state["best_key"], state["best_epoch"] = key, epoch
        state["history"].append(rec)
        state["epoch"] = epoch
        final = epoch == cfg.epochs
        if not final:  # the last epoch goes straight into the bundle: no checkpoint needed
            opt_t, opt_rest = optimizer_tensors(opt)
            state["optimizer"] = opt_rest
            state["scheduler"] = sched.state_dict()
            state["scaler"] = scaler.state_dict() if scaler.is_enabled() else None
            model_t = {f"model.{k}": v for k, v in model.state_dict().items()}
            state = ck.save(state, {**model_t, **opt_t}, improved)
        elif improved:
            state["best_file"] = None  # the model in memory is the best
        if reporter:
            spent = time.monotonic() - started
            per = spent / (epoch - done_before)
            reporter.epoch(**rec, epochs=cfg.epochs, improved=improved,
                           best_epoch=state["best_epoch"],
                           best_val_macro_f1=state["best_key"][0] if len(val) else None,
                           elapsed_s=round(spent, 2), eta_s=round(per * (cfg.epochs - epoch), 1))
        if stop_after is not None and epoch - done_before >= stop_after and epoch < cfg.epochs:
            raise Stopped(epoch, "stop-after")
    if state.get("best_file"):
        best = ck.load(state["best_file"])
        model.load_state_dict({k[6:]: v for k, v in best.items() if k.startswith("model.")})
    return model.eval(), state["history"], state["best_epoch"]
