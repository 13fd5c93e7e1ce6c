#!/usr/bin/env bash
# Install everything SA3 Studio needs (first run only) and start it. Arguments go to the app,
# e.g. `bash scripts/start.sh song.wav`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh" run
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  echo "[sa3-studio] installed. No display found: run this from a desktop session to see the window" \
       "(or set QT_QPA_PLATFORM=offscreen to start without one)." >&2
  exit 0
fi
exec "$VPY" -m sa3_studio "$@"
