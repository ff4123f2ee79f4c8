"""The hostile-input suite's cases (run and judged by tests/test_hostile_suite.py): the inputs
from hostile_inputs, each put to every verb that takes it, with what must happen.

A case names its class (slides, arguments, outputs, stores, csv, geojson, bundles, ...),
its `pvdesk` argv, the expected outcome (refused | ok | either | listed), the text its error
line must hold, and its limits (runner pool, file-size limit, time).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hostile_inputs import (
    HAS_FIFO,
    MAY_OPEN,
    bundle_inputs,
    csv_inputs,
    csv_row,
    geojson_inputs,
    good_bundle,
    good_csv,
    good_store,
    pickle_checkpoint_bundle,
    slide_inputs,
    store_inputs,
    write_csv,
)

from pvdesk.paths import sample_slide

SLOW = ("sparse 200k x 200k", "sparse 1M x 1M")  # cases on these inputs may take longer
SLOW_TIMEOUT = 120.0


@dataclass
class Case:
    cls: str
    name: str
    argv: list[str]
    expect: str = "refused"  # refused | ok | either | listed
    warnings: bool = False  # "WARNING: ..." lines (an untrained model) may precede the error
    says: str | None = None  # text the error line (or, for "listed", stdout) must contain
    pool: str = "light"
    fsize: int | None = None
    no_torch: bool = False
    absent: list[str] = field(default_factory=list)  # paths (in the case folder) that must not exist
    env: dict = field(default_factory=dict)
    copies: dict = field(default_factory=dict)  # name in the case folder -> file copied there
    timeout: float | None = None
    id: str = ""
    dir: Path | None = None



def build_cases(base: Path) -> tuple[list[Case], list[Path], Path]:
    """(cases, input roots to compare before and after, the pickle marker)."""
    inputs = base / "inputs"
    marker = base / "pickle-payload-ran"
    slides = slide_inputs(inputs / "slides")
    stores = store_inputs(inputs / "stores")
    csvs = csv_inputs(inputs / "csv")
    geojsons = geojson_inputs(inputs / "geojson")
    bundles = bundle_inputs(inputs / "bundles", marker)
    named = bundle_inputs(inputs / "home-broken" / "models", marker)  # looked up by name
    good_bundle(inputs / "home-broken" / "models", "good-user-model")
    pickle_bundle = pickle_checkpoint_bundle(inputs / "pickle-bundle", marker)
    store = good_store(inputs / "good.pvdb")
    big_store = good_store(inputs / "big.pvdb", n_tiles=600)
    csv_ok = good_csv(inputs / "good.csv")
    csv_big = write_csv(inputs / "big.csv", [csv_row(tile_x=224 * i) for i in range(400)])
    geo_ok = inputs / "good.geojson"
    geo_ok.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[0, 0], [500, 0], [500, 500], [0, 500], [0, 0]]]},
        "properties": {"classification": {"name": "Ductal carcinoma"}}}]}))
    sample = inputs / "sample.svs"
    shutil.copy(sample_slide(), sample)
    fifo_out = inputs / "fifo-out.png"
    if HAS_FIFO:
        os.mkfifo(fifo_out)
    file_in_way = inputs / "a-file"
    file_in_way.write_text("not a folder\n")
    model = ["--model", "demo-resnet50"]
    cases: list[Case] = []

    def add(cls, name, argv, **kw):
        cases.append(Case(cls, name, [str(a) for a in argv], **kw))

    def predict(cls, name, argv, **kw):
        """A predict that must be refused before any model is loaded, leaving nothing."""
        kw.setdefault("no_torch", True)
        kw.setdefault("absent", ["out/p", "out/s.pvdb"])
        add(cls, name, ["predict", *argv, "--out", "out/p", "--store", "out/s.pvdb"], **kw)

    # slides: limits before allocation, FIFOs, damaged files (point 1), every slide verb
    for name, (path, refused) in slides.items():
        exp = "refused" if refused else "either"
        add("slides", f"info {name}", ["info", path], expect=exp)
        add("slides", f"tiles {name}", ["tiles", path, "--preview", "out/p.png"], expect=exp)
        if refused:
            predict("slides", f"predict {name}", [path, *model])
            add("slides", f"explain {name}", ["explain", path, *model, "--tile", "0,0",
                                              "--out", "out/e"], no_torch=True,
                absent=["out/e"])
        add("window", f"open {name}", ["selftest", path, "--timeout", "100"], expect=exp,
            env={"QT_QPA_PLATFORM": "offscreen"})
    for c in cases:  # a thumbnail of 200k x 200k or 1M x 1M px: seconds, more under load
        if c.name.endswith(SLOW):
            c.timeout = SLOW_TIMEOUT
    add("window", "open the sample", ["selftest", sample, "--timeout", "30"], expect="ok",
        env={"QT_QPA_PLATFORM": "offscreen"})

    # arguments (point 2): finite, in range, integers, minimum tile size in pixels
    bad = {
        "--size": ["0", "-5", "15", "5000", "1e9", "abc", "nan", "2.5", "9" * 5000],
        "--overlap": ["1", "1.5", "-0.1", "nan", "inf", "x"],
        "--mpp": ["inf", "-inf", "nan", "0", "-1", "1e-9", "1e9", "0x10"],
        "--tile-um": ["0.001", "0", "-1", "inf", "nan", "1e12", "1e999"],
        "--min-tissue": ["2", "-1", "nan"],
    }
    for opt, values in bad.items():
        for v in values:
            add("arguments", f"info {opt} {v[:12]}", ["info", sample, f"{opt}={v}"],
                says=opt)
    for v in ["0", "-1", "1e9", "99999", "nan", "abc"]:
        add("arguments", f"tiles --preview-size {v}",
            ["tiles", sample, "--preview", "out/p.png", f"--preview-size={v}"],
            says="--preview-size", absent=["out/p.png"])
    for opt, v in [("--batch", "0"), ("--batch", "-1"), ("--batch", "9" * 30),
                   ("--workers", "0"), ("--workers", "1000"), ("--heatmap-size", "1"),
                   ("--heatmap-size", "1000000000"), ("--overlap", "1"), ("--tile-um", "nan"),
                   ("--mpp", "inf"), ("--precision", "fp8")]:
        predict("arguments", f"predict {opt} {v[:12]}", [sample, *model, f"{opt}={v}"],
                says=opt)
    for argv, says in [
        (["info", sample, "--tile-um", "5"], "at least 16 px"),
        (["tiles", sample, "--preview", "out/p.png", "--tile-um", "4"], "at least 16 px"),
        (["info", slides["sparse 200k x 200k"][0], "--overlap", "0.95", "--tile-um", "50"],
         "grid positions"),
        (["review", "stats", store, "--run", "0"], "--run"),
        (["review", "stats", store, "--run", "-3"], "--run"),
        (["review", "stats", store, "--run", "9" * 40], "--run"),
        (["review", "stats", store, "--run", "x"], "--run"),
        (["review", "export", store, "--csv", "out/e.csv", "--offset", "1,2,3"], "--offset"),
        (["review", "export", store, "--csv", "out/e.csv", "--offset", "9" * 40 + ",0"],
         "--offset"),
        (["review", "export", store, "--csv", "out/e.csv", "--object-type", "blob"],
         "--object-type"),
        (["review", "export", store], "--csv"),
        (["review", "import-geojson", store, geo_ok, "--min-coverage", "0"],
         "--min-coverage"),
        (["review", "import-geojson", store, geo_ok, "--min-coverage", "nan"],
         "--min-coverage"),
        (["review", "import-geojson", store, geo_ok, "--min-coverage", "2"], "--min-coverage"),
        (["selftest", sample, "--timeout", "0"], "--timeout"),
        (["selftest", sample, "--timeout", "nan"], "--timeout"),
        (["info"], "path"),
        (["tiles", sample], "--preview"),
        (["predict", sample], "--model"),
        (["review"], "ACTION"),
        (["review", "stat", store], "did you mean"),
        (["frobnicate"], "unknown verb"),
        (["info", sample, "--no-such-option"], "unrecognized"),
        (["models", "--dir"], "--dir"),
        (["similar", store, "--run", "1", "--tile", "0,0", "--k", "0"], "--k"),
        (["similar", store, "--run", "1", "--tile", "a,b"], "--tile"),
        (["similar", store, "--run", "1", "--tile", "9" * 40 + ",0"], "--tile"),
        (["similar", store, "--run", "0", "--tile", "0,0"], "--run"),
        (["similar", store, "--run", "1", "--tile", "99999,99999"], "no tile"),
        (["query", store, "x", "--run", "1", "--out", "out/q.png", "--top", "0"], "--top"),
        (["query", store, "x", "--run", "1", "--out", "out"], "is a folder"),
        (["query", store, "x", "--run", "1", "--out", "out/no/q.png"], "does not exist"),
        (["query", store, "y" * 400, "--run", "1", "--out", "out/q.png"], "1 to 300"),
        (["query", store, "x", "--run", "77", "--out", "out/q.png"], "77"),
        (["explain", sample, *model, "--top", "0", "--out", "out/e"], "--top"),
        (["explain", sample, *model, "--tile", "x", "--out", "out/e"], "--tile"),
        (["explain", sample, *model, "--tile", "0,0", "--top", "3", "--out", "out/e"],
         "not allowed"),
        (["explain", sample, *model, "--tile", "0,0", "--tile-um", "nan", "--out", "out/e"],
         "--tile-um"),
        (["explain", sample, "--model", "no-such-model", "--tile", "0,0", "--out", "out/e"],
         "no-such-model"),
    ]:
        add("arguments", " ".join(str(a) for a in argv[:1] + argv[2:])[:60], argv, says=says)

    # outputs (point 2): written atomically, write errors are one line naming the path
    tiles_out = ["tiles", sample, "--preview"]
    add("outputs", "preview into a folder", [*tiles_out, "out"], says="is a folder")
    add("outputs", "preview unknown extension", [*tiles_out, "out/p.xyz"], says="p.xyz",
        absent=["out/p.xyz"])
    add("outputs", "preview without extension", [*tiles_out, "out/p"], says="out/p",
        absent=["out/p"])
    add("outputs", "preview in a missing folder", [*tiles_out, "out/no/p.png"],
        says="does not exist")
    add("outputs", "preview under a file", [*tiles_out, file_in_way / "p.png"],
        says="a-file")
    if HAS_FIFO:
        add("outputs", "preview onto a FIFO", [*tiles_out, fifo_out], says="fifo-out.png")
    add("outputs", "preview, disk full", [*tiles_out, "out/p.png"], fsize=16384,
        says="out/p.png", absent=["out/p.png"])
    add("outputs", "preview, ok", [*tiles_out, "out/p.png", "--preview-size", "64"],
        expect="ok")
    for what, target, says in [("a folder", "out", "out"),
                               ("a missing folder", "out/no/e", "does not exist"),
                               ("a path under a file", file_in_way / "e", "a-file")]:
        add("outputs", f"export csv into {what}", ["review", "export", store, "--csv",
                                                   target], says=says)
        add("outputs", f"export geojson into {what}",
            ["review", "export", store, "--geojson", target], says=says)
    # (a file-size limit, not a full disk: SQLite's 32 KiB shared-memory file must fit)
    add("outputs", "export csv, disk full",
        ["review", "export", big_store, "--csv", "out/e.csv"], fsize=65536, says="out/e.csv",
        absent=["out/e.csv"])
    add("outputs", "export geojson, disk full",
        ["review", "export", big_store, "--geojson", "out/e.geojson"], fsize=65536,
        says="out/e.geojson", absent=["out/e.geojson"])
    if HAS_FIFO:
        add("outputs", "export csv onto a FIFO", ["review", "export", store, "--csv",
                                                 fifo_out], says="not a regular file")
    predict("outputs", "predict --out is a file", [sample, *model],
            absent=["out/s.pvdb"])
    cases[-1].argv[cases[-1].argv.index("out/p")] = str(file_in_way)
    predict("outputs", "predict --out under a file", [sample, *model],
            absent=["out/s.pvdb"])
    cases[-1].argv[cases[-1].argv.index("out/p")] = str(file_in_way / "p")
    add("outputs", "predict, disk full for the CSV",
        ["predict", sample, *model, "--out", "out/p", "--tile-um", "448"], pool="heavy",
        fsize=1200, says="clip_predictions.csv", warnings=True)
    add("outputs", "predict, disk full for the heatmaps",
        ["predict", sample, *model, "--out", "out/p", "--tile-um", "448"], pool="heavy",
        fsize=12000, says="heatmaps", warnings=True)

    # review stores (point 3): refused untouched, one line, every store verb
    for name, path in stores.items():
        may_open = name.startswith(MAY_OPEN)
        exp = "either" if may_open else "refused"
        add("store", f"stats {name}", ["review", "stats", path], expect=exp)
        add("store", f"similar {name}", ["similar", path, "--run", "1", "--tile", "0,0"],
            expect=exp)
        add("store", f"query {name}", ["query", path, "mucin pools", "--run", "1", "--out",
                                       "out/q.png"], expect=exp, no_torch=not may_open,
            absent=["out/q.png"])
        add("store", f"export {name}", ["review", "export", path, "--csv", "out/e.csv"],
            expect=exp, absent=[] if may_open else ["out/e.csv"])
        # team verbs: read-only on the store; a refused merge leaves no OUT
        add("store", f"merge {name}", ["review", "merge", "out/m.pvdb", store, path],
            expect=exp, absent=[] if may_open else ["out/m.pvdb"])
        add("store", f"agreement {name}", ["review", "agreement", path, "--out", "out/rep",
                                           "--resamples", "20"],
            expect=exp, absent=[] if may_open else ["out/rep"])
        add("store", f"reviewers {name}", ["review", "reviewers", path], expect=exp)
        add("store", f"settings {name}", ["review", "settings", path], expect=exp)
        if may_open:  # it may open for writing: a copy in the case's folder is written
            add("store", f"import-geojson {name}", ["review", "import-geojson", "copy.pvdb",
                                                    geo_ok], expect=exp,
                copies={"copy.pvdb": path})
            add("store", f"import {name}", ["review", "import", "copy.pvdb", "--csv", csv_ok],
                expect=exp, copies={"copy.pvdb": path})
            continue
        add("store", f"import-geojson {name}", ["review", "import-geojson", path, geo_ok])
        add("store", f"import {name}", ["review", "import", path, "--csv", csv_ok])
        predict("store", f"predict --store {name}", [sample, *model], absent=["out/p"])
        cases[-1].argv[cases[-1].argv.index("out/s.pvdb")] = str(path)
    add("store", "import, disk full", ["review", "import", "STORE", "--csv", csv_big],
        fsize=40000, says="full.pvdb")  # STORE: a copy in its own folder, made below

    # CSV import (point 4): nothing imported, line numbers, no hang, bounded memory
    for name, path in csvs.items():
        add("csv", f"import {name}", ["review", "import", store, "--csv", path])
        add("csv", f"import {name} (new store)",
            ["review", "import", "out/new.pvdb", "--csv", path], absent=["out/new.pvdb"])

    # GeoJSON import
    for name, path in geojsons.items():
        add("geojson", f"import-geojson {name}", ["review", "import-geojson", store, path])

    # model bundles (point 5): each broken one refused on its own, listed by `models`
    broken_home = {"PVDESK_HOME": str(inputs / "home-broken")}
    for name, path in bundles.items():
        predict("bundles", f"predict --model folder: {name}", [sample, "--model", path])
        predict("bundles", f"predict --model name: {name}",
                [sample, "--model", named[name].name], env=broken_home, says="broken")
        add("bundles", f"models --dir: {name}", ["models", "--dir", path], expect="listed",
            says="broken bundle, skipped:", pool="heavy")
    add("bundles", "models with every broken bundle", ["models"], expect="listed",
        says="good-user-model", env=broken_home, pool="heavy")
    predict("bundles", "demo-resnet50 beside broken bundles",
            [slides["random.svs"][0], *model], env=broken_home, says="random.svs")
    add("bundles", "pickle checkpoint is refused at load",
        ["predict", sample, "--model", pickle_bundle, "--out", "out/p", "--tile-um", "448"],
        pool="heavy", says="refused")
    # models import / check / add: a broken bundle is never copied in or run; nothing written
    for name, path in bundles.items():
        add("bundles", f"models import: {name}", ["models", "import", path],
            absent=["home/models"], pool="heavy")
        add("bundles", f"models check: {name}", ["models", "check", path, "--device", "cpu"],
            pool="heavy")
    for name, argv, says in (
            ("bad spec", ["--backbone", "no-such-form"], "forms:"),
            ("unknown timm architecture", ["--backbone", "timm:no_such_net"], "timm has no"),
            ("missing weights file", ["--backbone", "timm:vit_small_patch16_224", "--weights",
                                      "out/none.safetensors", "--head", "out/h.safetensors"],
             "weights file not found"),
            ("weights file is a folder", ["--backbone", "open_clip:RN50", "--weights", "out"],
             "not a weights file"),
            ("local-dir without config", ["--backbone", "local-dir:out"], "missing"),
            ("pickle head", ["--backbone", "RN50:openai", "--kind", "clip-linear", "--head",
                             str(pickle_bundle) + "/evil.pt"], "refused")):
        add("bundles", f"models add: {name}", ["models", "add", "new", *argv],
            absent=["home/models"], says=says or None, pool="heavy")
    add("bundles", "models import: a folder without manifest", ["models", "import", "out"],
        absent=["home/models"], says="no manifest.json")

    for i, c in enumerate(cases):
        c.id = f"{i:04d}"
    roots = [inputs, sample_slide()]
    return cases, roots, marker

