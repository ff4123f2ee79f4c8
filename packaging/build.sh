#!/usr/bin/env bash
# Build the one-folder desktop app dist/pvdesk/ with PyInstaller for this platform, then
# (INSTALL_DESKTOP_ENTRY=1, Linux) install its .desktop entry, icon and MIME types for the
# current user. Check the result with packaging/check_frozen.sh.
#
#     packaging/build.sh                 (PYTHON=... picks the project's interpreter)
#
# PyInstaller goes into its own virtual environment (build/pyinstaller-venv, BUILD_VENV to
# move it) that borrows the project's packages through a .pth line, so the project's
# environment stays as pip made it. Needs several GB of disk and several minutes: the
# build carries Python, Qt, OpenSlide and PyTorch (with CUDA's libraries when the project's
# torch is a CUDA build; a CPU-only torch makes a much smaller app). Not part of the tests.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-$ROOT/.venv/bin/python}
BUILD_VENV=${BUILD_VENV:-$ROOT/build/pyinstaller-venv}
T0=$(date +%s)

if [ ! -x "$BUILD_VENV/bin/pyinstaller" ]; then
  echo "== a virtual environment for PyInstaller in $BUILD_VENV"
  "$PY" -m venv "$BUILD_VENV"
  "$BUILD_VENV/bin/python" -m pip install --quiet "pyinstaller>=6.10" pyinstaller-hooks-contrib
  DEPS=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  SITE=$("$BUILD_VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "$DEPS" > "$SITE/zz_pvdesk_project.pth"   # after pip: it must not see the project's
fi

echo "== PyInstaller (packaging/pvdesk.spec)"
"$BUILD_VENV/bin/python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" packaging/pvdesk.spec

if [ "$(uname -s)" = "Linux" ] && [ "${INSTALL_DESKTOP_ENTRY:-0}" = "1" ]; then
  DATA=${XDG_DATA_HOME:-$HOME/.local/share}
  mkdir -p "$DATA/applications" "$DATA/icons/hicolor/scalable/apps"
  cp pvdesk/resources/icons/pvdesk.svg "$DATA/icons/hicolor/scalable/apps/pvdesk.svg"
  sed "s#^Exec=pvdesk#Exec=$ROOT/dist/pvdesk/pvdesk#" packaging/pvdesk.desktop \
    > "$DATA/applications/pvdesk.desktop"
  if command -v xdg-mime >/dev/null; then
    xdg-mime install --novendor packaging/pvdesk-mime.xml || true
  fi
  if command -v update-desktop-database >/dev/null; then
    update-desktop-database "$DATA/applications" || true
  fi
  echo "installed $DATA/applications/pvdesk.desktop"
fi
echo "built $ROOT/dist/pvdesk ($(du -sh "$ROOT/dist/pvdesk" | cut -f1)) in $(( $(date +%s) - T0 )) s"
