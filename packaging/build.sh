#!/usr/bin/env bash
# Build a one-folder desktop bundle in dist/pvdesk with PyInstaller, and install the
# .desktop entry for the current user on Linux. Run from anywhere inside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet pyinstaller
python -m PyInstaller --noconfirm packaging/pvdesk.spec
if [ "$(uname -s)" = "Linux" ] && [ "${INSTALL_DESKTOP_ENTRY:-0}" = "1" ]; then
  mkdir -p "$HOME/.local/share/applications"
  sed "s#^Exec=pvdesk#Exec=$PWD/dist/pvdesk/pvdesk#" packaging/pvdesk.desktop \
    > "$HOME/.local/share/applications/pvdesk.desktop"
fi
echo "built dist/pvdesk"
