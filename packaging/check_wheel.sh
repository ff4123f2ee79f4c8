#!/usr/bin/env bash
# Wheel check: build pvdesk's wheel, install it into a fresh virtual environment outside the
# source tree, and run it as a new user would: `pvdesk --version`, `pvdesk models`,
# `pvdesk info` on the packaged sample slide, and a headless `pvdesk predict` with the demo
# model. Fails when the installed program reads anything from the source tree.
#
#     packaging/check_wheel.sh            (uses .venv/bin/python; PYTHON=... to choose)
#
# The fresh environment gets pvdesk from the wheel only; its dependencies (torch, Qt,
# OpenSlide ...) are borrowed from the build interpreter's site-packages through a .pth
# line, added after the wheel is installed, so the check takes seconds instead of a
# multi-gigabyte download. That .pth does not run the source tree's editable-install hook.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pvdesk-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
T0=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - T0 ))"; }

step "copy the sources (a clean tree: no stale build/ output can reach the wheel)"
mkdir -p "$WORK/src"
(cd "$ROOT" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md \
    LICENSE NOTICE pvdesk training) | tar -xf - -C "$WORK/src"

step "build the wheel"
if "$PY" -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" \
    2>/dev/null; then
  ISOLATION=--no-build-isolation   # setuptools is here: build offline
else
  ISOLATION=
fi
"$PY" -m pip wheel --quiet --no-deps $ISOLATION -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/pvdesk-*.whl)
ls -l "$WHEEL"
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["pvdesk/resources/models/demo-resnet50/manifest.json",
        "pvdesk/resources/models/demo-clip-rn50/text_embeddings.safetensors",
        "pvdesk/resources/prompts/breakhis-default.json",
        "pvdesk/resources/samples/CMU-1-Small-Region.svs",
        "pvdesk/resources/icons/pvdesk.svg", "training/cli.py"]
missing = [n for n in need if n not in names]
assert not missing, f"the wheel lacks {missing}"
assert not [n for n in names if n.startswith(("tests/", "resources/"))], "stray folders"
print(f"wheel holds {len(names)} files, resources included")
EOF

step "install it into a fresh virtual environment in $WORK/venv"
"$PY" -m venv --without-pip "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$PY" -m pip --python "$VPY" install --quiet --no-deps --no-index "$WHEEL"
DEPS=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
SITE=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$DEPS" > "$SITE/zz_pvdesk_check_deps.pth"

step "run the installed program from $WORK/run"
mkdir -p "$WORK/run"
cd "$WORK/run"
export PVDESK_HOME="$WORK/home" QT_QPA_PLATFORM=offscreen
unset PYTHONPATH PVDESK_RESOURCES PVDESK_WEIGHTS_DIR || true
BIN="$WORK/venv/bin"
"$VPY" - "$WORK/venv" <<'EOF'
import sys
venv = sys.argv[1]
import pvdesk, training
from pvdesk.paths import resources_dir, sample_slide
for what, path in [("pvdesk", pvdesk.__file__), ("training", training.__file__),
                   ("resources", str(resources_dir()))]:
    assert path.startswith(venv), f"{what} comes from {path}, not from the installed wheel"
import os
other = [p for p in sys.path if os.path.isfile(os.path.join(p or ".", "pvdesk", "__init__.py"))
         and not p.startswith(venv)]
assert not other, f"another pvdesk is importable: {other}"
assert sample_slide().is_file()
print(f"pvdesk {pvdesk.__version__} from {pvdesk.__file__}")
EOF
"$BIN/pvdesk" --version
"$BIN/pvdesk-train" --version
"$BIN/pvdesk" models --json > models.json
SAMPLE=$("$VPY" -c "from pvdesk.paths import sample_slide; print(sample_slide())")
"$BIN/pvdesk" info "$SAMPLE" --json > info.json
"$BIN/pvdesk" predict "$SAMPLE" --model demo-resnet50 --device cpu --workers 1 --out out \
    --store s.pvdb --json > predict.json
set +e
"$BIN/pvdesk" modles 2> typo.txt
RC=$?
set -e
"$VPY" - "$WORK/venv" "$RC" <<'EOF'
import json, sys
venv, rc = sys.argv[1], int(sys.argv[2])
models = {b["name"]: b for b in json.load(open("models.json"))["bundles"]}
assert {"demo-resnet50", "demo-clip-rn50"} <= set(models), sorted(models)
assert models["demo-resnet50"]["path"].startswith(venv), models["demo-resnet50"]["path"]
info = json.load(open("info.json"))
assert info["vendor"] == "aperio" and info["tiles"]["count"] > 0, info
pred = json.load(open("predict.json"))
(slide,) = pred["results"]
assert slide["tiles"] == info["tiles"]["count"], (slide["tiles"], info["tiles"])
assert slide["models"][0]["model"].startswith("demo-resnet50"), slide["models"]
typo = open("typo.txt").read()
assert rc == 2 and "models" in typo, (rc, typo)
print(f"models: {len(models)} bundles; info: {info['dimensions']} px, "
      f"{info['tiles']['count']} tiles; predict: {slide['tiles']} tiles, "
      f"{slide['tiles_per_s']:.1f} tiles/s; typo: {typo.strip()}")
EOF
step "wheel check passed"
