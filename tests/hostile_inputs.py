"""Builders of hostile and damaged inputs, made in the test run (nothing large is committed):
slides, review stores, CSV and GeoJSON files, model bundles. Shared by the unit tests and the
hostile-input suite (tests/test_hostile_suite.py).

Every builder writes into a folder it is given and returns the path to hand to pvdesk.
Large slides are sparse TIFFs (tiles with no bytes): kilobytes on disk.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import shutil
import sqlite3
import struct
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from slide_factory import sparse_tiff

from pvdesk.paths import sample_slide

HAS_FIFO = hasattr(os, "mkfifo")


# -- slides ----------------------------------------------------------------------------------

def small_pyramid(path: Path, levels: int = 2) -> Path:
    rng = np.random.default_rng(1)
    img = np.full((768, 1024, 3), 235, np.uint8)
    img[100:500, 100:600] = rng.integers(60, 160, (400, 500, 3), dtype=np.uint8)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for k in range(levels):
            a = img[:: 2 ** k, :: 2 ** k]
            tif.write(a, tile=(256, 256), photometric="rgb", compression="zlib",
                      resolution=(2e4 / 2 ** k, 2e4 / 2 ** k), resolutionunit="CENTIMETER",
                      subfiletype=0 if k == 0 else 1)
    return path


def patch_tags(path: Path, values: dict[str, int]) -> Path:
    """Overwrite integer tags of every page in place (as LONG), e.g. {"TileWidth": 65536}."""
    with tifffile.TiffFile(path) as tif:
        bo, big = tif.byteorder, tif.is_bigtiff
        spots = [(page.tags[name], v) for page in tif.pages for name, v in values.items()
                 if name in page.tags]
    with open(path, "r+b") as fh:
        for tag, value in spots:
            fh.seek(tag.offset + 2)
            fh.write(struct.pack(bo + ("HQ" if big else "HI"), 4, 1))
            fh.seek(tag.valueoffset)
            fh.write(struct.pack(bo + "I", value))
    return path


def _png(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 200, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buf, "PNG")
    return buf.getvalue()


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def slide_inputs(root: Path) -> dict[str, tuple[Path, bool]]:
    """name -> (path, refused?): inputs a slide verb gets. ``refused`` ones must end in one
    line and exit 2; the others open (in bounded time and memory)."""
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, bool]] = {}

    def file(name: str, data: bytes, refused: bool = True) -> None:
        p = root / name
        p.write_bytes(data)
        out[name] = (p, refused)

    sample = sample_slide().read_bytes()
    pyr = small_pyramid(root / "_pyramid.tiff")
    for side in (65536, 1_000_000, 0):
        p = root / f"tile{side}.tiff"
        shutil.copy(pyr, p)
        out[f"tile {side} px"] = (patch_tags(p, {"TileWidth": side, "TileLength": side}), True)
    cmu = root / "cmu-65520.svs"
    cmu.write_bytes(sample)
    out["CMU tile 65520 px"] = (patch_tags(cmu, {"TileWidth": 65520, "TileLength": 65520}),
                                True)
    p = root / "width-huge.tiff"
    shutil.copy(pyr, p)
    out["width 4e9 px"] = (patch_tags(p, {"ImageWidth": 4_000_000_000}), True)
    out["sparse 1M x 1M"] = (sparse_tiff(root / "sparse-1m.tiff", 1_000_000, 1_000_000,
                                         tile=4096), False)
    out["sparse 200k x 200k"] = (sparse_tiff(root / "sparse-200k.tiff", 200_000, 200_000,
                                             tile=1024), False)
    file("empty.svs", b"")
    file("random.svs", np.random.default_rng(2).bytes(65536))
    file("random.tiff", b"II*\x00" + np.random.default_rng(3).bytes(65536))
    file("random.ndpi", np.random.default_rng(4).bytes(4096))
    file("random.dcm", b"\x00" * 128 + b"DICM" + np.random.default_rng(5).bytes(4096))
    file("random.mrxs", np.random.default_rng(6).bytes(2048))
    file("text.svs", b"this is not a slide\n" * 50)
    file("truncated.svs", sample[: 1 << 16])
    file("truncated-half.svs", sample[: len(sample) // 2])
    file("bomb.png", _bomb_png())
    file("ok.png", _png(), refused=False)
    file("png-as.svs", _png())
    file("gzip.svs", b"\x1f\x8b\x08\x00" + np.random.default_rng(7).bytes(1000))
    zeros = root / "zeros.tiff"
    zeros.write_bytes(b"II*\x00" + b"\x00" * 4096)
    out["zero IFD tiff"] = (zeros, True)
    loop = root / "loop.svs"
    loop.symlink_to(loop)
    out["symlink loop"] = (loop, True)
    dangling = root / "dangling.svs"
    dangling.symlink_to(root / "gone.svs")
    out["dangling symlink"] = (dangling, True)
    if os.path.exists("/dev/zero"):
        out["/dev/zero"] = (Path("/dev/zero"), True)
    empty_dir = root / "empty-folder"
    empty_dir.mkdir()
    out["empty folder"] = (empty_dir, True)
    junk_dir = root / "junk-folder"
    junk_dir.mkdir()
    (junk_dir / "a.png").write_bytes(b"not a png")
    (junk_dir / "b.jpg").write_bytes(b"\xff\xd8junk")
    out["folder of junk images"] = (junk_dir, False)  # opens; its images fail when read
    mrxs = root / "alone.mrxs"
    mrxs.write_bytes(b"[GENERAL]\nSLIDE_VERSION=1.0\n")
    out["mrxs without data"] = (mrxs, True)
    if HAS_FIFO:
        out["FIFO slide"] = (_fifo(root / "fifo.svs"), True)
        d = root / "dicom-fifo"
        d.mkdir()
        _fifo(d / "a.dcm")
        out["folder with FIFO a.dcm"] = (d, True)
        d = root / "patches-fifo"
        d.mkdir()
        (d / "benign").mkdir()
        (d / "benign" / "p1.png").write_bytes(_png())
        _fifo(d / "benign" / "p2.png")
        out["patch folder with a FIFO"] = (d, False)
    return out


# -- review stores ----------------------------------------------------------------------------

def good_store(path: Path, n_tiles: int = 12) -> Path:
    from pvdesk.review.sample import make_sample_store

    store, run, ids = make_sample_store(path, n_tiles=n_tiles)
    store.confirm(ids[0])
    store.close()
    return path


# Damage SQLite cannot see when it opens a store (a flipped bit inside a value, text that is
# not UTF-8 in a row no query reads): such a store may open, and then fails (one line) only
# when a damaged page is read. Without checksums a flipped value cannot be told from data.
MAY_OPEN = ("bitflip", "bad-utf8")


def store_inputs(root: Path) -> dict[str, Path]:
    """name -> a path given as a review store; none of them may be changed, and all but the
    MAY_OPEN ones are refused when opened."""
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    good = good_store(root / "_good.pvdb")
    data = good.read_bytes()

    def file(name: str, content: bytes) -> None:
        p = root / name
        p.write_bytes(content)
        out[name] = p

    file("empty.pvdb", b"")
    file("random.pvdb", np.random.default_rng(8).bytes(8192))
    file("text.pvdb", b"notes\n" * 200)
    file("header-only.pvdb", data[:100])
    file("truncated.pvdb", data[: len(data) // 3])
    magic = bytearray(data)
    magic[3] ^= 0xFF
    file("flipped-magic.pvdb", bytes(magic))
    rng = np.random.default_rng(9)
    for k in range(6):  # bit flips in the pages: the schema, the data, the indexes
        flipped = bytearray(data)
        for pos in rng.integers(100, len(data), 1 + k * 3):
            flipped[pos] ^= 1 << int(rng.integers(0, 8))
        file(f"bitflip{k}.pvdb", bytes(flipped))
    utf = bytearray(data)  # text cells that are not UTF-8 (the "Could not decode" case)
    i = utf.find(b"slide-1")
    if i > 0:
        utf[i:i + 7] = b"\xff\xfe\xfd\xfc\xfb\xfa\xf9"
    file("bad-utf8.pvdb", bytes(utf))
    foreign = root / "foreign.pvdb"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t(x)")
    con.close()
    out["foreign.pvdb"] = foreign
    plain = root / "plain-sqlite.pvdb"
    con = sqlite3.connect(plain)
    con.execute("PRAGMA user_version=0")
    con.execute("VACUUM")
    con.close()
    out["plain-sqlite.pvdb"] = plain
    newer = root / "newer.pvdb"
    shutil.copy(good, newer)
    con = sqlite3.connect(newer)
    con.execute("PRAGMA user_version=99")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    out["newer.pvdb"] = newer
    folder = root / "folder.pvdb"
    folder.mkdir()
    out["folder.pvdb"] = folder
    if HAS_FIFO:
        out["fifo.pvdb"] = _fifo(root / "fifo.pvdb")
    if os.path.exists("/dev/zero"):
        z = root / "devzero.pvdb"
        z.symlink_to("/dev/zero")
        out["devzero.pvdb"] = z
    return out


# -- predictions CSV --------------------------------------------------------------------------

CSV_CLASSES = ["benign", "malignant"]


def csv_row(**over) -> dict:
    row = {"source": "/slides/a.svs", "tile_x": 0, "tile_y": 0, "tile_w": 224, "tile_h": 224,
           "mpp": 0.5, "model": "m@1", "predicted": "malignant", "predicted_group": "malignant",
           "confidence": 0.75, "p_benign": 0.25, "p_malignant": 0.75,
           "review_status": "unreviewed", "review_label": "", "reviewer": "",
           "reviewed_at": ""}
    row.update(over)
    return row


def write_csv(path: Path, rows: list[dict]) -> Path:
    from pvdesk.export.csv import columns

    cols = columns(CSV_CLASSES)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    path.write_text(buf.getvalue())
    return path


BAD_CSV_CELLS = {
    "30-digit tile_x": {"tile_x": "9" * 30},
    "5000-digit tile_y": {"tile_y": "1" * 5000},
    "tile_x 2^60": {"tile_x": str(1 << 60)},
    "p inf": {"p_benign": "inf", "p_malignant": "0"},
    "p -inf": {"p_benign": "-inf"},
    "p nan": {"p_benign": "nan"},
    "p 1e999": {"p_malignant": "1e999"},
    "p -5": {"p_benign": "-5", "p_malignant": "6"},
    "p 1.5": {"p_benign": "1.5", "p_malignant": "-0.5"},
    "sum 0.5": {"p_benign": "0.25", "p_malignant": "0.25"},
    "sum 2": {"p_benign": "1", "p_malignant": "1"},
    "tile_w 0": {"tile_w": "0"},
    "tile_h -3": {"tile_h": "-3"},
    "partial coordinates": {"tile_y": ""},
    "missing probability": {"p_benign": ""},
    "mpp 0": {"mpp": "0"},
    "mpp nan": {"mpp": "nan"},
    "confidence 7": {"confidence": "7"},
    "unknown status": {"review_status": "maybe"},
    "formula label": {"review_status": "corrected", "review_label": "=cmd|' /C calc'!A0"},
    "text in tile_x": {"tile_x": "twelve"},
    "empty source": {"source": ""},
    "float tile_x": {"tile_x": "1.5"},
}


def csv_inputs(root: Path) -> dict[str, Path]:
    """name -> a predictions CSV that ``review import`` must refuse (nothing imported)."""
    from pvdesk.export.csv import columns

    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    good = [csv_row(tile_x=224 * i) for i in range(5)]
    for name, over in BAD_CSV_CELLS.items():
        rows = [dict(r) for r in good]
        rows[3].update(over)
        out[name] = write_csv(root / f"{name.replace(' ', '_')}.csv", rows)
    header = ",".join(columns(CSV_CLASSES))

    def file(name: str, data: bytes) -> None:
        p = root / name
        p.write_bytes(data)
        out[name] = p

    file("empty.csv", b"")
    file("not-utf8.csv", b"\xff\xfe\x00\x01" * 100)
    file("nul.csv", (header + "\n" + "a\x00b," * 21 + "x\n").encode())
    file("no-line-breaks.csv", (header + "\n").encode() + b"a" * (3 << 20))
    file("huge-field.csv", (header + '\n"' + "x" * 400_000 + '"' + ",1" * 20 + "\n").encode())
    file("wrong-header.csv", b"source,x,y\n1,2,3\n")
    file("short-row.csv", (header + "\n1,2,3\n").encode())
    file("duplicate-column.csv", (header + ",p_benign\n").encode())
    file("binary.csv", np.random.default_rng(10).bytes(20000))
    if HAS_FIFO:
        out["FIFO"] = _fifo(root / "fifo.csv")
    if os.path.exists("/dev/zero"):
        out["/dev/zero"] = Path("/dev/zero")
    d = root / "folder.csv"
    d.mkdir()
    out["folder"] = d
    return out


def good_csv(path: Path) -> Path:
    return write_csv(path, [csv_row(tile_x=224 * i) for i in range(5)])


# -- GeoJSON ----------------------------------------------------------------------------------

def _fc(*features) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def _poly(coords) -> dict:
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": coords},
            "properties": {"classification": {"name": "Ductal carcinoma"}}}


def _tile(tile: str, probs: dict) -> dict:
    return {"type": "Feature", "geometry": None, "properties": {
        "metadata": {"tile": tile, "model": "m@1", "slide_id": "s"}, "measurements": probs}}


def geojson_inputs(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    texts = {
        "nested 200k": "[" * 200_000 + "]" * 200_000,
        "NaN": '{"type": "FeatureCollection", "features": [], "x": NaN}',
        "Infinity": '{"type": "FeatureCollection", "features": [], "x": -Infinity}',
        "1e999": '{"type": "FeatureCollection", "features": [], "x": 1e999}',
        "5001 digits": '{"type": "FeatureCollection", "features": [], "x": ' + "7" * 5001 + "}",
        "features not a list": '{"type": "FeatureCollection", "features": 5}',
        "not JSON": "this is not json",
        "string coordinates": _fc(_poly([[["a", "b"], [1, 2], [3, 4]]])),
        "ragged coordinates": _fc(_poly([[[0, 0], [1], [3, 4, 5, 6]]])),
        "coordinates a number": _fc(_poly(7)),
        "geometry a list": _fc({"type": "Feature", "geometry": [1, 2], "properties": {
            "classification": {"name": "Ductal carcinoma"}}}),
        "huge tile": _fc(_tile("9" * 40 + ",0,1,1", {"p_benign": 0.5, "p_malignant": 0.5})),
        "negative probabilities": _fc(_tile("0,0,224,224", {"p_benign": -5, "p_malignant": 6})),
        "tile w 0": _fc(_tile("0,0,0,224", {"p_benign": 0.5, "p_malignant": 0.5})),
    }
    out: dict[str, Path] = {}
    for i, (name, text) in enumerate(texts.items()):
        p = root / f"g{i}.geojson"
        p.write_text(text)
        out[name] = p
    p = root / "not-utf8.geojson"
    p.write_bytes(b"\xff\xfe{}" * 10)
    out["not UTF-8"] = p
    if HAS_FIFO:
        out["FIFO"] = _fifo(root / "fifo.geojson")
    if os.path.exists("/dev/zero"):
        out["/dev/zero"] = Path("/dev/zero")
    return out


# -- model bundles ----------------------------------------------------------------------------

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
                _fifo(target)
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
