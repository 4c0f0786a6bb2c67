#!/usr/bin/env bash
# Installs the system packages the napari GUI tests need (Xvfb and the xcb libraries Qt loads)
# when they are missing. Qt's offscreen platform cannot create napari's GL canvas, so the GUI
# tests run on a virtual X server with QT_QPA_PLATFORM=xcb.
set -euo pipefail
pkgs=(xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0
      libxcb-randr0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libgl1 libegl1 libfontconfig1
      libdbus-1-3 libxcb-cursor0)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages for the GUI tests: ${missing[*]}"
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
