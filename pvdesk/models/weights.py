"""Where backbone weights come from: random init, the bundle, a local file, a cache, a download.

Nothing here downloads unless ``fetch`` is called, and ``fetch`` tries once: offline flags
(HF_HUB_OFFLINE, PVDESK_OFFLINE) or a 3-second connection probe make it fail fast, with a
message that says what was tried and how to name a local file.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk import heavy
from pvdesk.errors import ModelError

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle

WEIGHTS_DIR_ENV = "PVDESK_WEIGHTS_DIR"
HOW_TO_POINT = (f"point pvdesk at a local copy: {WEIGHTS_DIR_ENV}=FOLDER holding it, or "
                "\"backbone\": {\"path\": FILE} in a copy of the bundle's manifest (API: "
                "Bundle.load(weights=FILE))")


def how_to(p: WeightsPlan) -> str:
    if not p.names:
        return HOW_TO_POINT
    return HOW_TO_POINT.replace("holding it", f"holding {p.names[0]}.safetensors (or .pt/.pth/"
                                              f".bin, or {p.names[-1]})")
EXTS = (".safetensors", ".pt", ".pth", ".bin")


@dataclass
class WeightsPlan:
    how: str  # random | bundle | file | cached | download | missing
    path: Path | None = None
    detail: str = ""
    tried: list[str] = field(default_factory=list)
    url: str = ""  # what a download would fetch (repo or URL)
    host: str = ""
    names: list[str] = field(default_factory=list)  # file names looked for in the weights dir
    dest: Path | None = None  # where a direct download goes


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("PVDESK_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def network_reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _bundle_has_backbone(bundle: Bundle) -> bool:
    from pvdesk.models.safetensors_header import read_header

    f = bundle.weights_file
    if f is None:
        return False
    keys = list(read_header(f).tensors)  # the header only: no torch, ModelError if broken
    if bundle.kind == "resnet50":
        return "conv1.weight" in keys and "layer4.2.bn3.weight" in keys
    return any(k.startswith("backbone.") for k in keys)


def _local(path: str | Path, bundle: Bundle) -> Path:
    """A weights file the user named (``Bundle.load(weights=FILE)``): anywhere."""
    p = Path(os.path.expandvars(str(path))).expanduser()
    if not p.is_absolute() and bundle.path is not None:
        p = bundle.path / p
    return p


def _from_manifest(path: str, bundle: Bundle) -> Path:
    """``backbone.path`` of the manifest: inside the bundle folder unless absolute (see
    pvdesk.models.bundle_files); ModelError for ``../../etc/passwd`` and links out."""
    from pvdesk.models.bundle_files import manifest_weights_path

    return manifest_weights_path(bundle, path)


def hf_cached(repo: str, names) -> list[Path]:
    """Those of ``names`` (files of the Hugging Face repository ``repo``) already in the
    Hugging Face cache, in order; none without huggingface_hub. Never downloads."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return []
    return [Path(hit) for n in names
            if isinstance(hit := try_to_load_from_cache(repo, n), str)]


def _weights_dir_candidates(bundle: Bundle, names: list[str]) -> list[Path]:
    d = os.environ.get(WEIGHTS_DIR_ENV)
    if not d:
        return []
    stems = [bundle.name] + names
    return [Path(d).expanduser() / (s if s.endswith(EXTS) else s + e)
            for s in stems for e in ([""] if s.endswith(EXTS) else EXTS)]


def _open_clip_cache(model: str, tag: str) -> tuple[list[Path], str, str, list[str]]:
    """(cache candidates, what a download would fetch, its host, names for the weights dir)."""
    ocp = heavy.open_clip().pretrained

    cfg = ocp.get_pretrained_cfg(model, tag) or {}
    if not cfg:
        raise ModelError(f"open_clip has no pretrained weights '{tag}' for model '{model}' "
                         f"(known: {', '.join(ocp.list_pretrained_tags_by_model(model)) or 'none'})")
    cands: list[Path] = []
    url, host, what = cfg.get("url", ""), "", f"open_clip {model} '{tag}'"
    hub = cfg.get("hf_hub", "")
    if hub:
        repo, fname = os.path.split(hub)
        names = [fname] if fname else ["open_clip_model.safetensors",
                                       "open_clip_pytorch_model.bin"]
        if fname.endswith((".bin", ".pth")):
            names.insert(0, fname[:-4] + ".safetensors")
        cands += hf_cached(repo, names)
        what, host = f"hf-hub {repo}", "huggingface.co"
    if url and "openaipublic" not in url:  # OpenAI's own files are TorchScript: refused
        cands.append(Path("~/.cache/clip").expanduser() / os.path.basename(url))
        if not hub:
            what, host = url, url.split("/")[2]
    local_names = [f"{model}-{tag}", model] + (names[::-1] if hub else [])
    return cands, what, host, local_names


def _torchvision_cache(name: str) -> tuple[list[Path], str, str, list[str]]:
    torch = heavy.torch()
    ResNet50_Weights = heavy.torchvision().models.ResNet50_Weights

    try:
        w = ResNet50_Weights[name]
    except KeyError:
        raise ModelError(f"torchvision has no ResNet50 weights {name!r} (known: "
                         f"{', '.join(ResNet50_Weights.__members__)})") from None
    fname = os.path.basename(w.url)
    cand = Path(torch.hub.get_dir()) / "checkpoints" / fname
    return [cand], w.url, w.url.split("/")[2], [f"resnet50-{name}", fname]


def plan(bundle: Bundle, override: str | Path | None = None) -> WeightsPlan:
    """Decide where the backbone weights come from, looking only at files and caches."""
    bb = bundle.backbone
    src = bb.get("source")
    if override is not None:
        p = _local(override, bundle)
        return WeightsPlan("file" if p.is_file() else "missing", p, f"local file {p}",
                           [f"weights={p}"])
    if _bundle_has_backbone(bundle):
        return WeightsPlan("bundle", bundle.weights_file, "in the bundle (weights.safetensors)")
    if src == "bundle":
        return WeightsPlan("missing", None, "the manifest says the backbone is in the bundle, "
                           "but weights.safetensors has none", ["weights.safetensors"])
    if src == "file" or bb.get("path"):
        p = _from_manifest(bb["path"], bundle)
        ok = p.is_file()
        return WeightsPlan("file" if ok else "missing", p, f"local file {p}"
                           + ("" if ok else " (not found)"), [f"backbone.path {p}"])
    if bb.get("local_dir"):  # an open_clip folder the user named: its weights are there
        from pvdesk.models.openclip_dir import WEIGHT_NAMES, folder_of, weights_in

        folder = folder_of(bundle)
        f = weights_in(folder)
        if f is None:
            return WeightsPlan("missing", None, f"no weights in the open_clip folder {folder} "
                               f"(put {WEIGHT_NAMES[0]} there, beside open_clip_config.json)",
                               [f"{folder}/{n}" for n in WEIGHT_NAMES])
        return WeightsPlan("file", f, f"local file {f}")
    if bb.get("init") == "random" or (src == "torchvision" and not bb.get("weights")) or (
            src == "open_clip" and not bb.get("pretrained")):
        return WeightsPlan("random", None, f"random weights (seed {bb.get('seed', 0)}), built "
                           "here; no download")
    if src == "open_clip":
        cands, what, host, names = _open_clip_cache(bb["model"], bb["pretrained"])
    elif src == "torchvision":
        cands, what, host, names = _torchvision_cache(bb["weights"])
    elif src == "timm":
        from pvdesk.models.timm_tower import cache_candidates

        cands, what, host, names = cache_candidates(bundle)
    else:  # hf-hub
        cands, what, host, names = _hf_hub_cache(bb["id"])
    # the bundle folder, then PVDESK_WEIGHTS_DIR, then the library's own cache
    local = _bundle_folder_candidates(bundle) + _weights_dir_candidates(bundle, names)
    for c in local + cands:
        if c.is_file():
            return WeightsPlan("cached", c, f"cached at {c}")
    tried = ([f"the bundle folder {bundle.path} (backbone.safetensors)"]
             if bundle.path is not None else [])
    tried += ([f"{WEIGHTS_DIR_ENV} {os.environ[WEIGHTS_DIR_ENV]}"]
              if os.environ.get(WEIGHTS_DIR_ENV) else [])
    if what.startswith("hf-hub "):
        tried.append(f"the Hugging Face cache for {what[7:]}")
    tried += [str(c) for c in cands if "huggingface" not in str(c)]
    return WeightsPlan("download", None, f"not downloaded yet ({what})", tried, what, host,
                       [bundle.name] + names, cands[-1] if cands else None)


def _bundle_folder_candidates(bundle: Bundle) -> list[Path]:
    """A backbone weights file kept in the bundle folder beside the head's weights."""
    if bundle.path is None:
        return []
    return [bundle.path / f"backbone{e}" for e in EXTS]


def _hf_hub_cache(repo: str) -> tuple[list[Path], str, str, list[str]]:
    """An open_clip hf-hub repository: its weights in the folder that holds its
    open_clip_config.json (PVDESK_WEIGHTS_DIR/ORG--REPO/, else the Hugging Face cache)."""
    from pvdesk.models.openclip_dir import WEIGHT_NAMES, hub_folder, weights_in

    folder = hub_folder(repo)
    hit = weights_in(folder) if folder is not None else None
    names = [f"{repo.replace('/', '--')}/{n}" for n in WEIGHT_NAMES]
    return ([hit] if hit is not None else []), f"hf-hub {repo}", "huggingface.co", names


def weights_status(bundle: Bundle) -> tuple[bool, str]:
    """(available here?, explanation) for the bundle's backbone and head. Never downloads."""
    from pvdesk.models.manifest import WEIGHTS_NAME

    if bundle.kind in ("clip-linear", "clip-mlp") and bundle.weights_file is None:
        return False, f"the head weights ({WEIGHTS_NAME}) are missing from the bundle"
    try:
        p = plan(bundle)
    except ModelError as exc:
        return False, str(exc)
    if p.how == "download":
        return False, f"{p.detail}; downloaded on first use when online, or " + how_to(p)
    if p.how == "missing":
        return False, f"{p.detail}; " + how_to(p)
    return True, p.detail


def backbone_file(bundle: Bundle, p: WeightsPlan) -> Path | None:
    """The file the backbone weights of plan ``p`` are read from, fetched first when they are
    not here yet (``fetch``: fails fast offline, and for a missing file); None for random
    weights and weights inside the bundle."""
    if p.how in ("file", "cached"):
        return p.path
    if p.how in ("download", "missing"):
        return fetch(bundle, p)
    return None


def fetch(bundle: Bundle, p: WeightsPlan) -> Path | None:
    """Download what ``plan`` could not find, once and quickly failing. Returns a file path,
    or None for hf-hub/open_clip downloads that live in their own cache (then re-plan)."""
    tried = "; ".join(p.tried)
    if p.how == "missing":
        raise ModelError(f"{bundle.name}: cannot get the backbone weights: {p.detail} "
                         f"(tried {tried}); {how_to(p)}")
    why = None
    if offline():
        why = "offline mode is set (HF_HUB_OFFLINE / PVDESK_OFFLINE)"
    elif p.host and not network_reachable(p.host):
        why = f"{p.host} cannot be reached (no network?)"
    if why:
        raise ModelError(f"{bundle.name}: cannot get the backbone weights ({p.url}): {why}; "
                         f"tried {tried}; download them elsewhere and {how_to(p)}")
    bb = bundle.backbone
    try:
        if bb["source"] == "open_clip":
            ocp = heavy.open_clip().pretrained

            return Path(ocp.download_pretrained(ocp.get_pretrained_cfg(bb["model"],
                                                                      bb["pretrained"])))
        if bb["source"] == "torchvision":
            torch = heavy.torch()

            dst = p.dest
            dst.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(p.url, str(dst), progress=True)
            return dst
        if bb["source"] == "timm":
            from pvdesk.models.timm_tower import download

            return download(bb)
        from pvdesk.models.openclip_dir import download as download_dir
        from pvdesk.models.openclip_dir import weights_in

        return weights_in(download_dir(bb["id"]))  # hf-hub open_clip: config and weights
    except ModelError:
        raise
    except Exception as exc:  # network and HTTP errors of several libraries
        raise ModelError(f"{bundle.name}: downloading {p.url} failed ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); {how_to(p)}"
                         ) from None
