#!/usr/bin/env bash
# Frozen-app check: start the one-folder build (packaging/build.sh) as a user would, with no
# Python environment around it, headless and then offscreen, and report its size and
# start-up times.
#
#     packaging/check_frozen.sh [dist/pvdesk/pvdesk]
#
# Headless: --version, models, info on the bundled sample, a mistyped verb, the training
# entry (`pvdesk -m training --version`, how the window starts retraining) and a predict
# with the demo ResNet50 (PyTorch inside the build). Offscreen: `pvdesk selftest` starts the
# window, opens the sample, closes, and prints its timings.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
APP=$(realpath "${1:-$ROOT/dist/pvdesk/pvdesk}")
[ -x "$APP" ] || { echo "no frozen app at $APP: run packaging/build.sh first" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pvdesk-frozen.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
# Nothing from a Python environment may leak in.
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PVDESK_RESOURCES PVDESK_WEIGHTS_DIR || true
export PVDESK_HOME="$WORK/home" PATH=/usr/bin:/bin
ms() { date +%s%N | cut -c1-13; }
need() { grep -q -e "$1" "$2" || { echo "FAILED: $2 lacks $1: $(head -c 600 "$2")"; exit 1; }; }
timed() {  # timed NAME CMD...: run, print the wall time, keep stdout in NAME.out
  local name=$1; shift
  local t=$(ms)
  "$@" > "$name.out"
  echo "$name: $(( $(ms) - t )) ms"
}

echo "== $APP ($(du -sh "$(dirname "$APP")" | cut -f1), $(find "$(dirname "$APP")" -type f | wc -l) files)"
timed version-cold "$APP" --version
timed version-warm "$APP" --version
cat version-warm.out
timed help "$APP" --help
timed models "$APP" models --json
SAMPLE=$(grep -o '"path": "[^"]*demo-resnet50"' models.out | cut -d'"' -f4)
SAMPLE=$(dirname "$(dirname "$SAMPLE")")/samples/CMU-1-Small-Region.svs
timed info "$APP" info "$SAMPLE" --json
timed train-version "$APP" -m training --version
cat train-version.out
set +e
"$APP" modles 2> typo.err
RC=$?
set -e
[ "$RC" = 2 ] || { echo "FAILED: pvdesk modles exited $RC"; exit 1; }
need "did you mean 'models'" typo.err
echo "typo: $(cat typo.err)"
"$APP" info "$SAMPLE" --tile-um 224 --json > info224.out
TILES=$(grep -o '"count": [0-9]*' info224.out | grep -o '[0-9]*')
timed predict "$APP" predict "$SAMPLE" --model demo-resnet50 --device cpu --workers 1 \
    --tile-um 224 --out out --json
QT_QPA_PLATFORM=offscreen timed selftest "$APP" selftest "$SAMPLE"
cat selftest.out

# The checks, in the frozen app's own words.
need '"demo-resnet50"' models.out
need "$(dirname "$APP")" models.out
need '"vendor": "aperio"' info.out
need '"count": [1-9]' info.out
need "\"tiles\": $TILES," predict.out   # every tissue tile of 224 um that info counts
need '"opened_s"' selftest.out
need '"frozen": true' selftest.out
echo "== frozen-app check passed"
