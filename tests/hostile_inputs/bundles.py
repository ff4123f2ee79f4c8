"""Hostile model bundles: manifests (deep, huge, NaN, wrong kinds), weights (pickles,
links out, bad safetensors headers), paths escaping the folder, taxonomy files."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np

from .common import HAS_FIFO, make_fifo


def _manifest(name: str, **over) -> dict:
    m = {"schema_version": 1, "name": name, "version": "1", "kind": "resnet50",
         "backbone": {"source": "torchvision", "weights": None, "init": "random", "seed": 0},
         "classes": ["benign", "malignant"], "input_size": 224, "tile_um": 112.0,
         "trained": False, "provenance": {"data": "tests"}}
    m.update(over)
    return m


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], pad: int = 0,
                      header_len: int | None = None) -> bytes:
    """A safetensors file with zero-filled tensors, made without torch."""
    sizes = {"F32": 4, "F16": 2, "I64": 8, "U8": 1}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = int(np.prod(shape)) * sizes[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    length = len(raw) if header_len is None else header_len
    return struct.pack("<Q", length) + raw + b"\0" * (offset + pad)


class Payload:
    """Unpickling this creates the marker file: it must never happen."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def bundle_inputs(root: Path, marker: Path) -> dict[str, Path]:
    """name -> a broken bundle folder (its folder name is also its manifest's name, so a
    lookup by name finds it). ``marker`` is created if any pickle payload ever runs."""
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    pickle_bytes = pickle.dumps({"conv1.weight": Payload(str(marker))})

    def bundle(case: str, manifest_text: str | None = None, files: dict | None = None,
               **over) -> None:
        name = "bad-" + "".join(ch if ch.isalnum() else "-" for ch in case.lower())
        d = root / name
        d.mkdir()
        if manifest_text is None:
            manifest_text = json.dumps(_manifest(name, **over))
        if manifest_text is not False:
            (d / "manifest.json").write_text(manifest_text.replace("NAME", name))
        for fname, data in (files or {}).items():
            target = d / fname
            if isinstance(data, tuple) and data[0] == "link":
                target.symlink_to(data[1])
            elif data == "fifo":
                make_fifo(target)
            elif data == "dir":
                target.mkdir()
            else:
                target.write_bytes(data)
        out[case] = d

    base = json.dumps(_manifest("NAME"))
    bundle("manifest nested 200k deep",
           base[:-1] + ', "extra": ' + "[" * 200_000 + "]" * 200_000 + "}")
    bundle("manifest 5001-digit number", base[:-1] + ', "input_size": ' + "9" * 5001 + "}")
    bundle("tile_um NaN", base.replace('"tile_um": 112.0', '"tile_um": NaN'))
    bundle("tile_um Infinity", base.replace('"tile_um": 112.0', '"tile_um": Infinity'))
    bundle("tile_um 1e999", base.replace('"tile_um": 112.0', '"tile_um": 1e999'))
    bundle("tile_um 0", tile_um=0)
    bundle("tile_um 1e-9", tile_um=1e-9)
    bundle("mean NaN", base[:-1] + ', "mean": [NaN, 0, 0]}')
    bundle("std 0", std=[0, 1, 1])
    bundle("input_size huge", input_size=10 ** 9)
    bundle("seed 1e30", backbone={"source": "torchvision", "weights": None, "init": "random",
                                  "seed": 10 ** 29})
    bundle("manifest not UTF-8", False, {"manifest.json": b"\xff\xfe{" * 50})
    bundle("manifest a list", "[]")
    bundle("manifest 2 MiB", base[:-1] + ', "pad": "' + "x" * (2 << 20) + '"}')
    if HAS_FIFO:
        bundle("manifest a FIFO", False, {"manifest.json": "fifo"})
    bundle("manifest a folder", False, {"manifest.json": "dir"})
    if os.path.exists("/dev/zero"):
        bundle("manifest to /dev/zero", False, {"manifest.json": ("link", "/dev/zero")})
    bundle("unknown kind", kind="magic")
    bundle("2000 classes", classes=[f"c{i}" for i in range(2000)])
    bundle("name with slash", base.replace('"name": "NAME"', '"name": "a/b"'))
    bundle("empty weights", files={"weights.safetensors": b""})
    bundle("pickle as weights", files={"weights.safetensors": pickle_bytes})
    bundle("weights to /etc/passwd", files={"weights.safetensors": ("link", "/etc/passwd")})
    outside = root / "_outside.safetensors"
    outside.write_bytes(safetensors_bytes({"fc.weight": ("F32", [2, 2048]),
                                           "fc.bias": ("F32", [2])}))
    bundle("weights link out of the folder", files={"weights.safetensors": ("link", outside)})
    bundle("huge safetensors header", files={"weights.safetensors": struct.pack(
        "<Q", 1 << 40) + b"{}"})
    bundle("header beyond the file", files={"weights.safetensors": struct.pack("<Q", 5000)
                                            + b'{"a": 1}'})
    bundle("header not JSON", files={"weights.safetensors": struct.pack("<Q", 16)
                                     + b"\x80\x04not json!!" + b"\0" * 64})
    bundle("tensor outside the data", files={"weights.safetensors": safetensors_bytes(
        {"fc.weight": ("F32", [2, 2048]), "fc.bias": ("F32", [2])}, pad=0)[:-100]})
    bundle("tensor shape mismatch", files={"weights.safetensors": safetensors_bytes(
        {"fc.weight": ("F32", [5, 2048]), "fc.bias": ("F32", [5])})})
    if HAS_FIFO:
        bundle("weights a FIFO", files={"weights.safetensors": "fifo"})
    bundle("weights a folder", files={"weights.safetensors": "dir"})
    bundle("backbone.path ../../etc/passwd",
           backbone={"source": "file", "path": "../../etc/passwd"})
    bundle("backbone.path /etc/passwd", backbone={"source": "file", "path": "/etc/passwd"})
    bundle("backbone.path link out", backbone={"source": "file", "path": "w.safetensors"},
           files={"w.safetensors": ("link", "/etc/passwd")})
    bundle("backbone.path NUL", backbone={"source": "file", "path": "a\u0000b.pt"})
    bundle("prompts escape", kind="clip-zeroshot", prompts="../../../etc/passwd.json",
           backbone={"source": "open_clip", "model": "RN50", "init": "random"},
           classes=["benign", "malignant"])
    tsn = ["tumor", "stroma", "normal"]
    bundle("taxonomy escape", taxonomy="../../etc/passwd", classes=tsn)
    bundle("taxonomy link out", taxonomy="taxonomy.json", classes=tsn,
           files={"taxonomy.json": ("link", "/etc/passwd")})
    if HAS_FIFO:
        bundle("taxonomy a FIFO", taxonomy="taxonomy.json", classes=tsn,
               files={"taxonomy.json": "fifo"})
    bundle("taxonomy 12 classes", taxonomy="taxonomy.json", classes=[f"c{i}" for i in range(12)],
           files={"taxonomy.json": json.dumps({"classes": [{"name": f"c{i}"}
                                                           for i in range(12)]}).encode()})
    bundle("taxonomy bad colour", taxonomy="taxonomy.json", classes=tsn,
           files={"taxonomy.json": json.dumps({"classes": [
               {"name": n, "colour": "red"} for n in tsn]}).encode()})
    return out


def pickle_checkpoint_bundle(root: Path, marker: Path) -> Path:
    """A bundle whose manifest names a pickle checkpoint inside its folder: refused at load
    (torch.load(weights_only=True)), its payload never runs."""
    d = root / "bad-pickle-checkpoint"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps(_manifest(
        "bad-pickle-checkpoint", backbone={"source": "file", "path": "evil.pt"})))
    (d / "evil.pt").write_bytes(pickle.dumps({"conv1.weight": Payload(str(marker))}))
    return d


def good_bundle(root: Path, name: str = "good-one") -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps(_manifest(name)))
    return d
