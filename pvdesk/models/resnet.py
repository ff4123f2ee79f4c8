"""The resnet50 kind: torchvision's ResNet50 with an fc head for the bundle's classes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvdesk import heavy
from pvdesk.errors import ModelError
from pvdesk.models.clip import bundle_tensors
from pvdesk.models.manifest import WEIGHTS_NAME
from pvdesk.models.randinit import calibrate_batchnorm, calibrate_linear, seeded
from pvdesk.models.tensors import load_checkpoint, load_into
from pvdesk.models.weights import backbone_file, plan

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle


def _backbone_state(model, sd: dict, path: str) -> dict:
    """A pretrained checkpoint's tensors minus an fc that does not fit (e.g. ImageNet's 1000)."""
    own = model.state_dict()
    keep = {k: v for k, v in sd.items()
            if not (k.startswith("fc.") and k in own and own[k].shape != v.shape)}
    missing = [k for k in own if k not in keep and not k.startswith("fc.")]
    if missing:
        raise ModelError(f"{path}: tensor '{missing[0]}': missing for ResNet50 "
                         f"({len(missing)} tensor(s) missing; is this a ResNet50 checkpoint?)")
    return keep


def build_resnet_net(bundle: Bundle, override=None):
    """The network for a resnet50 bundle: ``net(x) -> (logits, None)``."""
    nn = heavy.torch().nn
    resnet50 = heavy.torchvision().models.resnet50

    tensors = bundle_tensors(bundle)
    where = str(bundle.path / WEIGHTS_NAME) if bundle.path else bundle.where
    p = plan(bundle, override)
    # Weights first: a missing, refused or undownloadable file fails before any model is built.
    path = backbone_file(bundle, p)
    state = load_checkpoint(path) if path is not None else None
    # Random init (the demo): zero-initialised residual branches (torchvision's option) and
    # calibrated BatchNorm statistics keep the random network well conditioned, so outputs
    # vary from tile to tile and bf16 stays close to fp32 (a plain random ResNet50 saturates).
    with seeded(bundle.backbone.get("seed", 0)):
        model = resnet50(weights=None, num_classes=len(bundle.classes),
                         zero_init_residual=p.how == "random")
    if p.how == "random":
        calibrate_linear(model.fc, calibrate_batchnorm(model, bundle.backbone.get("seed", 0),
                                                        size=64, n=4))
    head_loaded = False
    if p.how == "bundle":
        load_into(model, tensors, where, "ResNet50")
        head_loaded = True
    else:
        if state is not None:
            sd = _backbone_state(model, state, str(path))
            load_into(model, sd, str(path), "ResNet50", strict=False)
            head_loaded = "fc.weight" in sd
        if tensors:
            load_into(model, tensors, where, "ResNet50", strict=False)
            head_loaded = head_loaded or "fc.weight" in tensors
    if bundle.declared_trained and p.how != "random" and not head_loaded:
        raise ModelError(f"{bundle.where}: field 'trained': the bundle says trained but no "
                         f"fc.weight for its {len(bundle.classes)} classes was found (put it in "
                         f"{WEIGHTS_NAME})")

    class ResNetNet(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x), None

        def export_tensors(self, include_backbone=None):
            return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    return ResNetNet(model)
