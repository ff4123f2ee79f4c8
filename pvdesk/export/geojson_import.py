"""Read GeoJSON back into a review store: pvdesk's own exports and QuPath's objects.

A file may be a FeatureCollection, a single Feature or a JSON array of features (what
QuPath's "Export objects as GeoJSON" writes without the feature-collection option).

- Features that carry pvdesk's metadata (``tile``, ``model``, ``slide_id``: every feature of
  a pvdesk export, and annotations that went through QuPath, which keeps their metadata)
  restore their tile, its probabilities (``measurements``) and its review decision with the
  original reviewer and time, audited as "import". When the classification was changed
  after export (in QuPath), the new class is recorded as a correction by the importing
  reviewer. Team metadata (``label_by:<reviewer>``, consensus) is read as the CSV's team
  columns are (:mod:`pvdesk.export.team_import`).
- Any other polygon with a classification naming a review label ("Ductal carcinoma", "DC",
  "ductal_carcinoma", "Non-tissue / artefact", "Uncertain" ...) labels the tiles of the
  slide's run that it covers: a tile at least ``min_coverage`` inside polygons of one label
  (the label covering most wins) is corrected to it by the importing reviewer, through the
  store's review actions, so it is in the audit trail and on that reviewer's undo stack.
  A pvdesk tile that comes back from QuPath without metadata (tile and detection objects
  lose it) is matched by its id instead, and counts only when its class was changed.
- With ``as_region`` the polygons become the slide's regions of interest instead
  (:mod:`pvdesk.regions`): ``pvdesk predict --store`` then classifies only the tiles inside.

QuPath's coordinates are shifted back by the slide's OpenSlide bounds offset.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path, PurePath

import numpy as np

from pvdesk import safe_json
from pvdesk.export import ExportError
from pvdesk.export.csv_checks import check_float, check_int
from pvdesk.export.csv_import import find_or_add_run
from pvdesk.export.qupath import covered_fraction, polygons_of, slide_offset, tile_uuid
from pvdesk.export.team_import import TeamImport, check_cells, label_check, team_part, team_summary
from pvdesk.review.types import CONFIRMED, CORRECTED, UNREVIEWED, TilePrediction, tile_key
from pvdesk.taxonomy import Taxonomy

DEFAULT_MIN_COVERAGE = 0.5
MAX_GEOJSON_BYTES = 1 << 30
_PVDESK_KEYS = ("tile", "model", "slide_id")


def read_features(path) -> list[dict]:
    """The features of a GeoJSON file; ExportError (one line) when it is not one."""
    path = Path(path)
    try:  # a regular file of bounded size, nesting and numbers (no NaN, no 1e999)
        doc = safe_json.load_file(path, MAX_GEOJSON_BYTES)
    except OSError as exc:
        raise ExportError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except safe_json.JSONProblem as exc:
        raise ExportError(f"{path}: not a GeoJSON file ({exc})") from None
    if isinstance(doc, list):
        feats = doc
    elif isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        feats = [doc]
    else:
        raise ExportError(f"{path}: not a GeoJSON FeatureCollection, Feature or list of "
                          "features")
    if not isinstance(feats, list):
        raise ExportError(f"{path}: 'features' is not a list")
    return [f for f in feats if isinstance(f, dict)]


def class_name(feature: dict) -> str | None:
    """The QuPath classification's name of a feature (None when unclassified)."""
    c = (feature.get("properties") or {}).get("classification")
    if isinstance(c, dict):
        c = c.get("name")
    return c.strip() if isinstance(c, str) and c.strip() else None


def _human_names(taxonomy: Taxonomy) -> dict[str, str]:
    out = {}
    for lab in taxonomy.review_labels:
        _, human, tag = taxonomy.label_parts(lab)
        out[human.lower()] = out[tag.lower()] = out[lab] = lab
    return out


def review_label(name: str | None, taxonomy: Taxonomy | None = None) -> str | None:
    """The review label a QuPath class name means in ``taxonomy`` (the run's; BreakHis by
    default), or None (unknown, a group, derived)."""
    if not name:
        return None
    taxonomy = taxonomy or Taxonomy.breakhis()
    human = _human_names(taxonomy)
    text = name.strip()
    for key in (text, text.lower(), text.lower().replace("-", "_").replace(" ", "_")):
        if key in human:
            return human[key]
    try:
        lab = taxonomy.normalise(text)
    except KeyError:
        return None
    return lab if lab in taxonomy.review_labels else None


def _metadata(feature: dict) -> dict:
    m = (feature.get("properties") or {}).get("metadata")
    return m if isinstance(m, dict) else {}


def _measurements(feature: dict) -> dict[str, float]:
    m = (feature.get("properties") or {}).get("measurements")
    if isinstance(m, list):  # QuPath before v0.4: [{"name": ..., "value": ...}]
        m = {d.get("name"): d.get("value") for d in m if isinstance(d, dict)}
    if not isinstance(m, dict):
        return {}
    return {str(k): float(v) for k, v in m.items() if isinstance(v, (int, float))}


def is_pvdesk_tile(feature: dict) -> bool:
    meta = _metadata(feature)
    return all(isinstance(meta.get(k), str) and meta.get(k) for k in _PVDESK_KEYS)


def import_geojson(store, path, *, slide_id: str | None = None, run_id: int | None = None,
                   min_coverage: float = DEFAULT_MIN_COVERAGE, as_region: bool = False,
                   offset: tuple[int, int] | None = None) -> dict:
    """Import a GeoJSON file into ``store`` (see the module's doc). Returns a summary dict:
    features, restored (tiles), decisions (restored), labelled ({label: tiles}), regions,
    skipped ({reason: count}), slide_id, run_id, offset, notes."""
    if not 0.0 < min_coverage <= 1.0:
        raise ExportError(f"the coverage threshold must be in (0, 1], got {min_coverage}")
    feats = read_features(path)
    fname = PurePath(str(path)).name
    try:
        return _import(store, path, feats, fname, slide_id, run_id, min_coverage, as_region,
                       offset)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        # a feature whose shape is not GeoJSON's (coordinates that are not numbers, a
        # geometry that is not an object, ...); a failed step's transaction is rolled back
        raise ExportError(f"{path}: malformed GeoJSON ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:120]})") from None


def _import(store, path, feats, fname, slide_id, run_id, min_coverage, as_region, offset):
    ours = [f for f in feats if is_pvdesk_tile(f) and not as_region]
    others = [f for f in feats if not (is_pvdesk_tile(f) and not as_region)]
    summary: dict = {"file": str(path), "features": len(feats), "restored": 0, "decisions": 0,
                     "labelled": {}, "regions": 0, "skipped": Counter(), "slide_id": slide_id,
                     "run_id": run_id, "offset": None, "notes": []}
    if ours:
        _restore(store, ours, fname, summary)
    if others:
        _apply(store, others, fname, summary, slide_id, run_id, min_coverage, as_region,
               offset)
    summary["skipped"] = dict(summary["skipped"])
    return summary


# -- pvdesk's own tiles ------------------------------------------------------------------------

def _parse_tile(meta: dict, where: str) -> tuple[int, int, int, int]:
    try:
        if len(meta["tile"]) > 100:
            raise ValueError("too long")
        x, y, w, h = (int(v) for v in meta["tile"].split(","))
        for name, v in (("x", x), ("y", y), ("w", w), ("h", h)):
            check_int(where, None, f"tile_{name}", v)
    except (ValueError, AttributeError, TypeError, ExportError):
        raise ExportError(f"{where}: metadata 'tile' must be 'x,y,w,h' in pixels (w, h > 0), "
                          f"got {str(meta.get('tile'))[:60]!r}") from None
    return x, y, w, h


def _same_run(store, run: str, model: str, classes: tuple[str, ...]) -> int | None:
    """The store's run with the exported run's id, when it is that run (same model and
    classes): re-importing into the store an export came from changes nothing."""
    if not run.isdigit():
        return None
    for r in store.runs():
        if r.run_id == int(run) and r.model == model and tuple(r.classes) == classes:
            return r.run_id
    return None


def _restore(store, feats: list[dict], fname: str, summary: dict) -> None:
    """Tiles, probabilities and decisions from pvdesk features, in one transaction."""
    groups: dict[tuple[str, tuple[str, ...], str], list] = defaultdict(list)
    for f in feats:
        meta = _metadata(f)
        where = f"{fname}: feature {f.get('id', '?')}"
        probs = {k[2:]: v for k, v in _measurements(f).items() if k.startswith("p_")}
        if not probs:
            raise ExportError(f"{where}: no p_<class> measurements")
        if not all(0.0 <= p <= 1.0 for p in probs.values()) or abs(
                sum(probs.values()) - 1.0) > 0.01:
            raise ExportError(f"{where}: the p_<class> measurements must be probabilities "
                              "in [0, 1] that sum to 1")
        mpp = meta.get("mpp")
        if mpp not in (None, ""):
            check_float(where, None, "mpp", float(mpp))
        cells = team_part(meta)
        if cells:
            check_cells(cells, label_check(probs), where)
        groups[(meta["model"], tuple(probs), meta.get("run", ""))].append((f, meta, probs, _parse_tile(meta, where)))
    later: dict[tuple[int, str], list[int]] = defaultdict(list)  # QuPath-side class changes
    team = TeamImport()
    with store.transaction():
        known = {s["slide_id"] for s in store.slides()}
        decisions = []
        created: list[int] = []
        for (model, classes, orig_run), items in groups.items():
            run = _same_run(store, orig_run, model, classes) or find_or_add_run(
                store, model, list(classes), fname, created)
            by_slide: dict[str, list[TilePrediction]] = defaultdict(list)
            for _f, meta, probs, (x, y, w, h) in items:
                sid = meta["slide_id"]
                if sid not in known:
                    store.add_slide(sid, meta.get("source") or sid, {})
                    known.add(sid)
                mpp = meta.get("mpp")
                by_slide[sid].append(TilePrediction(
                    meta.get("source") or sid, x, y, w, h,
                    float(mpp) if mpp not in (None, "") else None,
                    [probs[c] for c in classes]))
            for sid, preds in by_slide.items():
                store.add_predictions(run, sid, preds)
            taxonomy = Taxonomy.of_run(store.run(run))
            for feat, meta, _probs, (x, y, w, h) in items:
                sid = meta["slide_id"]
                tid = store.find_tile(sid, None, x, y, w, h)
                status = meta.get("review_status") or UNREVIEWED
                label = meta.get("review_label") or None
                reviewed = status in (CONFIRMED, CORRECTED) and label
                if reviewed:
                    decisions.append((tid, run, status, label, meta.get("reviewer") or None,
                                      meta.get("reviewed_at") or None))
                cells = team_part(meta)
                if cells:
                    team.add(tid, run, meta.get("predicted"), cells,
                             (meta.get("reviewer") or None) if reviewed else None,
                             label if reviewed else None, meta.get("reviewed_at") or None,
                             f"{fname}: feature {feat.get('id', '?')}")
                shown = label if status in (CONFIRMED, CORRECTED) and label else \
                    meta.get("predicted")
                now = review_label(class_name(feat), taxonomy)
                if now is not None and shown is not None and now != shown:
                    later[(run, now)].append(tid)
            summary["restored"] += len(items)
        written = team.apply(store, fname, decisions)
        summary.update(decisions=len(decisions), team_decisions=written["team_decisions"],
                       roles=written["roles"], notes=summary["notes"] + written["notes"])
        for (run, label), ids in later.items():
            store.correct_many(ids, label, run)
            summary["labelled"][label] = summary["labelled"].get(label, 0) + len(ids)


# -- QuPath's objects -------------------------------------------------------------------------

def _target(store, slide_id, run_id) -> tuple[str, int]:
    if slide_id is None:
        slides = store.slide_ids(run_id=run_id, with_coords=True)
        if not slides:
            raise ExportError(f"{store.path}: no slide with tile predictions to label; run a "
                              "model first (pvdesk predict --store)")
        if len(slides) > 1:
            raise ExportError(f"{store.path}: the store holds {len(slides)} slides; choose one "
                              f"with --slide ({', '.join(slides[:5])})")
        slide_id = slides[0]
    if run_id is None:
        run_id = store.latest_run(slide_id)
        if run_id is None:
            raise ExportError(f"{store.path}: slide {slide_id} has no model run")
    return slide_id, run_id


def _apply(store, feats, fname, summary, slide_id, run_id, min_coverage, as_region, offset):
    """Label the covered tiles, or record the polygons as regions."""
    if as_region:
        if slide_id is None:
            slides = [s["slide_id"] for s in store.slides()]
            if len(slides) != 1:
                raise ExportError(f"{store.path}: choose the slide the regions belong to with "
                                  f"--slide (the store holds {len(slides)})")
            slide_id = slides[0]
    else:
        slide_id, run_id = _target(store, slide_id, run_id)
    summary["slide_id"], summary["run_id"] = slide_id, run_id
    if offset is None:
        offset, note = slide_offset(store, slide_id)
        if note:
            summary["notes"].append(note)
    summary["offset"] = list(offset)
    skipped: Counter = summary["skipped"]
    if as_region:
        from pvdesk.regions import set_regions

        regions = []
        for f in feats:
            polys = polygons_of(f.get("geometry"))
            if not polys:
                skipped["no area (point or line)"] += 1
                continue
            regions.append({"geometry": _shifted_geometry(polys, offset),
                            "label": class_name(f), "qupath_id": _id(f)})
        summary["regions"] = set_regions(store, slide_id, regions, fname)
        return
    recs = [r for r in store.tiles(slide_id=slide_id, run_id=run_id) if r.tile_x is not None]
    if not recs:
        raise ExportError(f"{store.path}: run {run_id} has no tiles on slide {slide_id}")
    by_uuid = {tile_uuid(slide_id, run_id, tile_key(r.source, *r.coords)): i
               for i, r in enumerate(recs)}
    rects = np.array([r.coords for r in recs], dtype=np.float64)
    cover: dict[str, list] = defaultdict(list)  # label -> polygons in level-0 pixels
    direct: dict[int, str] = {}
    taxonomy = Taxonomy.of_run(store.run(run_id))
    for f in feats:
        name = class_name(f)
        label = review_label(name, taxonomy)
        hit = by_uuid.get(_id(f) or "")
        if hit is not None:
            if label is None:
                skipped[f"unknown class {name!r}" if name else "no classification"] += 1
            elif label != recs[hit].shown_label:
                direct[hit] = label
            else:
                skipped["pvdesk tile, class unchanged"] += 1
            continue
        if name is None:
            skipped["no classification"] += 1
            continue
        if label is None:
            skipped[f"unknown class {name!r}"] += 1
            continue
        polys = polygons_of(f.get("geometry"))
        if not polys:
            skipped["no area (point or line)"] += 1
            continue
        cover[label] += [[ring + np.asarray(offset, dtype=np.float64) for ring in rings]
                         for rings in polys]
    assign = dict(direct)
    if cover:
        labels = list(cover)
        frac = np.stack([covered_fraction(cover[lab], rects) for lab in labels])
        best = frac.argmax(axis=0)
        for i in np.flatnonzero(frac.max(axis=0) >= min_coverage - 1e-9):
            assign.setdefault(int(i), labels[int(best[i])])
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in sorted(assign.items()):
        r = recs[i]
        if r.status != UNREVIEWED and r.label == label:
            skipped["tile already has that label"] += 1
            continue
        groups[label].append(r.tile_id)
    with store.transaction():
        for label, ids in groups.items():
            store.correct_many(ids, label, run_id)
    summary["labelled"] = {lab: len(ids) for lab, ids in groups.items()}


def _id(feature: dict) -> str | None:
    i = feature.get("id")
    return str(i) if i is not None else None


def _shifted_geometry(polys, offset) -> dict:
    d = np.asarray(offset, dtype=np.float64)
    coords = [[(ring + d).tolist() for ring in rings] for rings in polys]
    if len(coords) == 1:
        return {"type": "Polygon", "coordinates": coords[0]}
    return {"type": "MultiPolygon", "coordinates": coords}


def summary_text(s: dict) -> str:
    """A few lines for the command line and the window."""
    lines = [f"{s['file']}: {s['features']} features"]
    if s["restored"]:
        lines.append(f"  restored {s['restored']} tiles with {s['decisions']} review decisions")
    lines += ["  " + line for line in team_summary(s)]
    if s["labelled"]:
        total = sum(s["labelled"].values())
        per = ", ".join(f"{k} {v}" for k, v in sorted(s["labelled"].items()))
        lines.append(f"  labelled {total} tiles" + (f" of slide {s['slide_id']}, run "
                                                    f"{s['run_id']}" if s["run_id"] else "")
                     + f": {per}")
    if s["regions"]:
        lines.append(f"  {s['regions']} regions of interest for slide {s['slide_id']}: the next "
                     "`pvdesk predict --store` classifies only the tiles inside them")
    if s["offset"] and any(s["offset"]):
        lines.append(f"  QuPath coordinates shifted by the slide's OpenSlide bounds "
                     f"({s['offset'][0]}, {s['offset'][1]})")
    for reason, n in sorted(s["skipped"].items()):
        lines.append(f"  skipped {n}: {reason}")
    lines += [f"  note: {n}" for n in s["notes"]]
    return "\n".join(lines)
