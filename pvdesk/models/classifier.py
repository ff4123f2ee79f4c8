"""TileClassifier: one loaded bundle on one device, uint8 tiles in, probabilities out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk import heavy
from pvdesk.errors import ModelError
from pvdesk.models.device import autocast_dtype, pick_device, precision_label
from pvdesk.models.preprocess import normalisation, to_model_input

if TYPE_CHECKING:
    import torch

    from pvdesk.models.bundle import Bundle


@dataclass
class ClassifierOutput:
    probs: torch.Tensor  # (N, C) float32 on CPU, rows sum to 1, in bundle.classes order
    embeddings: torch.Tensor | None = None  # (N, D) float32 on CPU, L2-normalised (CLIP kinds)


class TileClassifier:
    """Owns a torch module (eval mode) on ``device``.

    ``net(x)`` takes a normalised float batch and returns ``(logits, embeddings or None)``;
    ``net.head`` maps float32 embeddings to logits (CLIP kinds) and always runs in fp32.
    """

    def __init__(self, bundle: Bundle, net, device: str = "cpu", precision: str = "auto"):
        torch = heavy.torch()

        self.bundle = bundle
        self.device = device
        self.precision = precision
        self._dtype = autocast_dtype(device, precision)
        self.effective_precision = precision_label(self._dtype)  # "fp32" | "bf16" | "fp16"
        self.net = net.eval().to(device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        # On the CPU, bf16 weights beat bf16 autocast: autocast re-casts fp32 weights on every
        # call, which made ViT attention slower than fp32 (the heads stay fp32 either way).
        self._bf16_weights = self._dtype == torch.bfloat16 and device.split(":")[0] == "cpu"
        if self._bf16_weights:
            self.net = self.net.to(torch.bfloat16)
            if isinstance(getattr(self.net, "head", None), torch.nn.Module):
                self.net.head.float()
        self._channels_last = device.split(":")[0] in ("cpu", "cuda")
        if self._channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        if device.split(":")[0] == "cuda":
            # Fixed tile shapes: let cuDNN time its convolution algorithms once and keep the
            # fastest (a few extra milliseconds on the first batch of each shape).
            torch.backends.cudnn.benchmark = True
        self._scale, self._shift = normalisation(bundle.mean, bundle.std, device)

    # -- preprocessing ---------------------------------------------------------------------
    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) RGB, on the host or the device -> the network's normalised input
        (N, 3, S, S) on the device: the uint8 tiles travel (non-blocking from pinned memory)
        and are converted, resized and normalised there (pvdesk.models.preprocess)."""
        torch = heavy.torch()

        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ModelError(f"{self.bundle.name}: expected a (N, 3, H, W) batch, got "
                             f"{tuple(batch.shape)}")
        x = batch.to(self.device, non_blocking=True)
        return to_model_input(x, self.bundle.input_size, self._scale, self._shift,
                              dtype=torch.bfloat16 if self._bf16_weights else None,
                              channels_last=self._channels_last)

    def _autocast(self):
        import contextlib

        torch = heavy.torch()

        if self._dtype is None or self._bf16_weights:
            return contextlib.nullcontext()
        return torch.autocast(self.device.split(":")[0], dtype=self._dtype)

    def _forward(self, batch: torch.Tensor):
        """(logits, embeddings or None), float32 on the device; call under inference_mode."""
        x = self.prepare(batch)
        with self._autocast():
            logits, emb = self.net(x)
        return logits.float(), (emb.float() if emb is not None else None)

    def forward_device(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(probabilities (N, C), L2-normalised embeddings (N, D) or None), float32, left on
        the device and not waited for: on a GPU the call returns once the work is queued, so
        the caller can queue the next batch (or copy the results back without blocking)
        before it needs these. ``batch`` as for ``prepare``."""
        torch = heavy.torch()

        with torch.inference_mode():
            logits, emb = self._forward(batch)
            return logits.softmax(dim=1), emb

    def _run(self, batch: torch.Tensor):
        torch = heavy.torch()

        with torch.inference_mode():
            logits, emb = self._forward(batch)
            return logits.cpu(), (emb.cpu() if emb is not None else None)

    # -- public ----------------------------------------------------------------------------
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Raw class logits (N, C), float32 on CPU."""
        return self._run(batch)[0]

    def predict(self, batch: torch.Tensor) -> ClassifierOutput:
        """Probabilities (and embeddings) on the CPU for a uint8 (N, 3, H, W) batch."""
        probs, emb = self.forward_device(batch)
        return ClassifierOutput(probs=probs.cpu(), embeddings=emb.cpu() if emb is not None
                                else None)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings (N, D), float32 on CPU (CLIP kinds only)."""
        if not self.bundle.has_embeddings:
            raise ModelError(f"{self.bundle.name}: kind '{self.bundle.kind}' has no image "
                             "embeddings (only CLIP kinds do)")
        return self._run(batch)[1]

    def head_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits from precomputed normalised embeddings (CLIP kinds), float32 on CPU."""
        torch = heavy.torch()

        if not self.bundle.has_embeddings:
            raise ModelError(f"{self.bundle.name}: kind '{self.bundle.kind}' has no head on "
                             "embeddings")
        with torch.inference_mode():
            return self.net.head(embeddings.to(self.device).float()).float().cpu()

    def export_tensors(self, include_backbone: bool | None = None) -> dict[str, torch.Tensor]:
        """Tensors that ``write_bundle`` needs to rebuild this classifier (CPU copies).

        ResNet50: the whole state dict. CLIP kinds: the head, plus ``backbone.*`` when
        ``include_backbone`` (default: only when the manifest says the backbone is the bundle).
        """
        if self._bf16_weights:  # the fp32 weights are gone; a bundle must not get bf16 ones
            raise ModelError(f"{self.bundle.name}: loaded with bf16 weights for speed; load it "
                             "with precision='fp32' to export its weights")
        out = self.net.export_tensors(include_backbone)
        return {k: v.contiguous() for k, v in out.items()}  # channels_last -> plain layout

    def __repr__(self) -> str:
        return (f"TileClassifier({self.bundle.name!r}, device={self.device!r}, "
                f"precision={self.effective_precision!r})")


def load_classifier(bundle: Bundle, device: str = "cpu", precision: str = "auto",
                    weights: str | Path | None = None) -> TileClassifier:
    """Build the network for ``bundle`` (weights from the bundle, caches or a local file)."""
    device = pick_device(device)
    autocast_dtype(device, precision)  # validate early
    _verify_files(bundle, weights)
    if bundle.kind == "resnet50":
        from pvdesk.models.resnet import build_resnet_net

        net = build_resnet_net(bundle, weights)
    else:
        from pvdesk.models.clip import build_clip_net

        net = build_clip_net(bundle, weights)
    return TileClassifier(bundle, net, device=device, precision=precision)


def _verify_files(bundle: Bundle, weights) -> None:
    """The weights about to be read are the ones the manifest's lineage records (sha256,
    cached by path, size and mtime): a changed or swapped file is refused in one line."""
    from pvdesk.models.file_hash import verify
    from pvdesk.models.weights import plan

    p = plan(bundle, weights)
    verify(bundle, p.path if p.how in ("file", "cached") and p.path is not None else None)
