"""A model bundle: a validated manifest plus the folder it came from. Importing it is cheap."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk.models.manifest import (
    CLIP_KINDS,
    MANIFEST_NAME,
    WEIGHTS_NAME,
    manifest_hash,
    read_manifest,
    validate_manifest,
)

if TYPE_CHECKING:
    from pvdesk.models.classifier import TileClassifier


class Bundle:
    """A parsed, validated manifest and its folder (``path`` is None for an in-memory one)."""

    def __init__(self, manifest: dict, path: Path | None = None, builtin: bool = False):
        where = (Path(path) / MANIFEST_NAME) if path is not None else "manifest"
        m = validate_manifest(manifest, where)
        self.manifest: dict = m
        self.path: Path | None = Path(path) if path is not None else None
        self.builtin = builtin
        self.name: str = m["name"]
        self.version: str = m["version"]
        self.kind: str = m["kind"]
        self.classes: list[str] = list(m["classes"])
        from pvdesk.taxonomy import from_manifest

        # names, display names, colours, keys and groups of the classes (BreakHis, a
        # taxonomy file in the folder, or made from the class names)
        self.taxonomy = from_manifest(m, self.path)
        self.input_size: int = m["input_size"]
        self.mean: tuple[float, float, float] = tuple(m["mean"])  # type: ignore[assignment]
        self.std: tuple[float, float, float] = tuple(m["std"])  # type: ignore[assignment]
        self.tile_um: float = m["tile_um"]
        # trained-ness follows the lineage: untrained when anything it stands on is
        from pvdesk.models.lineage import untrained_reasons

        self.declared_trained: bool = m["trained"]  # what the manifest's own flag says
        self.untrained_reasons: list[str] = untrained_reasons(m)
        self.trained: bool = not self.untrained_reasons
        self.lineage: dict = dict(m.get("lineage") or {})
        self.backbone: dict = dict(m["backbone"])
        self.provenance: dict = dict(m["provenance"])
        self.manifest_hash: str = manifest_hash(m)

    @classmethod
    def from_folder(cls, folder: str | Path, builtin: bool = False) -> Bundle:
        """The bundle in ``folder``: its manifest validated and its files checked (weights
        inside the folder, a valid safetensors header that fits the manifest, a
        backbone.path that does not lead out of the folder); ModelError otherwise."""
        from pvdesk.models.bundle_files import check_bundle_files

        folder = Path(folder)
        bundle = cls(read_manifest(folder / MANIFEST_NAME), folder, builtin=builtin)
        check_bundle_files(bundle)
        return bundle

    # -- properties ------------------------------------------------------------------------
    @property
    def has_embeddings(self) -> bool:
        return self.kind in CLIP_KINDS

    @property
    def status(self) -> str:
        """"UNTRAINED: <why>", "pretrained, not evaluated on pathology" or "trained"."""
        from pvdesk.models.lineage import status_text

        return status_text(self.manifest)

    @property
    def evaluation(self) -> str:
        """The recorded evaluation in one line (with n and a 95% interval), or "not
        evaluated" ("pretrained, not evaluated on pathology" for zero-shot bundles)."""
        from pvdesk.models.lineage import evaluation_text

        return evaluation_text(self.manifest)

    @property
    def label(self) -> str:
        """"name version", plus UNTRAINED for demo/random bundles (for outputs and the UI)."""
        text = f"{self.name} {self.version}"
        return text if self.trained else f"{text} (UNTRAINED)"

    @property
    def weights_file(self) -> Path | None:
        """The bundle's own weights.safetensors, when it has one."""
        if self.path is None:
            return None
        f = self.path / WEIGHTS_NAME
        return f if f.is_file() else None

    @property
    def weights_sha256(self) -> str:
        """The sha256 its manifest records for its own weights.safetensors ("" when it has
        none: the identity of such a bundle is its manifest, ``manifest_hash``)."""
        from pvdesk.models.lineage import own_weights_sha256

        return own_weights_sha256(self.lineage, WEIGHTS_NAME)

    @property
    def where(self) -> str:
        return str(self.path / MANIFEST_NAME) if self.path is not None else f"bundle {self.name}"

    # -- behaviour -------------------------------------------------------------------------
    def weights_status(self) -> tuple[bool, str]:
        """(available here?, a human explanation). Looks at files and caches; never downloads."""
        from pvdesk.models.weights import weights_status

        return weights_status(self)

    def load(self, device: str = "cpu", precision: str = "auto",
             weights: str | Path | None = None) -> TileClassifier:
        """Build the classifier on ``device``. ``weights`` names a local backbone weights file
        (overrides the manifest's, like ``--weights FILE``)."""
        from pvdesk.models.classifier import load_classifier

        return load_classifier(self, device=device, precision=precision, weights=weights)

    def __repr__(self) -> str:
        return (f"Bundle({self.name!r}, kind={self.kind!r}, classes={len(self.classes)}, "
                f"trained={self.trained}, path={str(self.path) if self.path else None!r})")
