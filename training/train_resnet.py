"""ResNet50 fine-tuning as a ``train`` step: start weights, resumable loop, held-out probs."""

from __future__ import annotations

from pvdesk import heavy
from pvdesk.models.manifest import IMAGENET_MEAN, IMAGENET_STD
from training.backbones import resnet_start
from training.data.samples import label_indices
from training.finetune import FinetuneConfig, finetune, predict

DEFAULTS = {"epochs": 35, "batch_size": 32, "lr": 1e-4, "step_size": 10, "gamma": 0.1,
            "input_size": 224}


def train_resnet(args, reporter, ds, classes, parts, out, device, precision, data_h) -> dict:
    from training.train import config_hash

    start = resnet_start(args.backbone)
    for n in start.notes:
        reporter.warning(n)
    reporter.note(f"fine-tuning ResNet50 from {start.described}; device {device}")
    mean = tuple(start.mean or IMAGENET_MEAN)
    std = tuple(start.std or IMAGENET_STD)
    opts = {k: getattr(args, k) for k in DEFAULTS}
    cfg = FinetuneConfig(**{k: (v if v is not None else DEFAULTS[k]) for k, v in opts.items()},
                         weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
                         workers=args.workers, seed=args.seed)
    ch = config_hash(args, classes, data_h, start.described)
    ytr = label_indices(parts["train"], classes)
    yval = label_indices(parts["val"], classes)
    model, history, best = finetune(parts["train"], ytr, parts["val"], yval, classes, start,
                                    cfg, out, device, ch, reporter, args.stop_after, mean, std)
    held = parts["test"] or parts["val"]
    probs = None
    if held:
        reporter.stage("evaluate", None)
        amp = None
        if device.startswith("cuda") and precision != "fp32":
            torch = heavy.torch()

            amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        probs = predict(model, held, cfg, mean, std, device, amp)
    reporter.note(f"best epoch {best} of {cfg.epochs}")
    tensors = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    from dataclasses import asdict

    return {"described": start.described, "input_size": cfg.input_size, "mean": mean,
            "std": std, "tile_um": 112.0, "tensors": tensors, "probs": probs,
            "history": history, "best_epoch": best, "backbone": start.backbone,
            "lineage_part": start.lineage_part(),
            "config": {"finetune": asdict(cfg)}}
