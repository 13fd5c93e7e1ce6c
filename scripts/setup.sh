#!/usr/bin/env bash
# Shared installer for scripts/start.sh and scripts/test.sh. Idempotent: a second run only checks.
#   usage: source scripts/setup.sh <run|test>
# Installs (only when missing): Debian system packages, a virtual environment in .venv, the package.
set -euo pipefail

SA3_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SA3_VENV="${SA3_VENV:-$SA3_ROOT/.venv}"
SA3_PURPOSE="${1:-run}"

say() { printf '[sa3-studio] %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------------------------
# PortAudio for playback; the Qt runtime libraries; xcb libraries for a real window.
SYS_COMMON=(libportaudio2 libegl1 libgl1 libx11-6 libdbus-1-3 libfontconfig1 libfreetype6
            libglib2.0-0 libxkbcommon0 libsndfile1)
SYS_WINDOW=(libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-render-util0
            libxcb-render0 libxcb-shape0 libxcb-util1 libxcb-xkb1 libxkbcommon-x11-0)
SYS_TEST=(xvfb xauth desktop-file-utils shared-mime-info xdg-utils)

sys_pkgs=("${SYS_COMMON[@]}" "${SYS_WINDOW[@]}")
[ "$SA3_PURPOSE" = test ] && sys_pkgs+=("${SYS_TEST[@]}")

if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${sys_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
      $SUDO apt-get update -q >/dev/null
      $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    }
  fi
else
  say "not a Debian-like system: install PortAudio and the Qt runtime libraries yourself (see README)"
fi

# --- Python ----------------------------------------------------------------------------------
pick_python() {
  for c in python3.13 python3.12 python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if [ ! -x "$SA3_VENV/bin/python" ]; then
  PY="$(pick_python)" || { say "Python 3.11 or newer is required"; exit 1; }
  say "creating virtual environment in $SA3_VENV"
  "$PY" -m venv "$SA3_VENV" || {
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y -q python3-venv >/dev/null; "$PY" -m venv "$SA3_VENV"; }
fi
VPY="$SA3_VENV/bin/python"

# Re-install only when pyproject.toml changed or the test tools are wanted and missing. The stamp
# in the venv records what was installed; the [dev] install also satisfies a plain run.
stamp="$SA3_VENV/.sa3-installed"
hash="$(sha256sum "$SA3_ROOT/pyproject.toml" | cut -c1-16)"
extras=""
[ "$SA3_PURPOSE" = test ] && extras="[dev]"
if ! grep -qxF -- "$hash$extras" "$stamp" 2>/dev/null &&
   ! { [ -z "$extras" ] && grep -qxF -- "$hash[dev]" "$stamp" 2>/dev/null; }; then
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  log="$SA3_VENV/.sa3-install.log"
  if ! "$VPY" -c 'import torch' >/dev/null 2>&1; then
    # Prefer a CPU build of torch that the machine provides through pip's find-links (no
    # multi-gigabyte CUDA download on CPU-only machines). SA3_TORCH_SPEC overrides.
    spec="${SA3_TORCH_SPEC:-}"
    if [ -z "$spec" ]; then
      links="$("$VPY" -m pip config get global.find-links 2>/dev/null || true)"
      links="${PIP_FIND_LINKS:-$links}"
      for d in $links; do
        w="$(ls "${d#file://}"/torch-*+cpu-*.whl 2>/dev/null | sort -V | tail -n1 || true)"
        if [ -n "$w" ]; then v="$(basename "$w" | cut -d- -f2)"; spec="torch==${v%%+*}"; fi
      done
    fi
    spec="${spec:-torch}"
    say "installing $spec"
    "$VPY" -m pip install -q "$spec" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  fi
  say "installing sa3-studio$extras"
  "$VPY" -m pip install -q -e "$SA3_ROOT$extras" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  echo "$hash$extras" > "$stamp"
fi
export SA3_VENV VPY SA3_ROOT
