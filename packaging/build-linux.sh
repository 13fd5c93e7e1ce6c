#!/usr/bin/env bash
# Build the self-contained SA3 Studio application folder for Linux, and an archive of it.
#
#   usage: bash packaging/build-linux.sh [--variant cpu|cuda] [--no-archive]
#
# Output (VARIANT is cpu unless --variant cuda):
#   dist/linux-VARIANT/sa3-studio/             the application folder; run ./sa3-studio inside
#   dist/sa3-studio-VERSION-linux-ARCH-VARIANT.tar.gz (+ .sha256)   the archive users download
#
# Reproducible: the tools and every runtime dependency are pinned (packaging/requirements-*.txt)
# and installed into a build venv of their own (build/linux/venv-VARIANT, reused while the pins do
# not change); SOURCE_DATE_EPOCH is the last commit's time and PYTHONHASHSEED is fixed; the spec
# is checked in (packaging/sa3-studio.spec); the archive is a name-sorted tar with fixed owners
# and times, gzip'ed without a name or a time stamp.
#
# Environment:
#   SA3_BUILD_PYTHON     interpreter for the build venv (default: python3.11; needs libpython)
#   SA3_BUILD_VENV       build venv folder (default: build/linux/venv-VARIANT)
#   SA3_TORCH_INDEX_URL  package index to take torch from (e.g. PyTorch's CPU wheel index on a
#                        machine whose pip would otherwise pick the CUDA build for --variant cpu)
#   SOURCE_DATE_EPOCH    override the time stamp written into the package
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG="$ROOT/packaging"
VARIANT=cpu
ARCHIVE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) VARIANT="${2:-}"; shift 2 ;;
    --variant=*) VARIANT="${1#*=}"; shift ;;
    --no-archive) ARCHIVE=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build-linux: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case "$VARIANT" in
  cpu|cuda) ;;
  *) echo "build-linux: --variant must be cpu or cuda, not '$VARIANT'" >&2; exit 2 ;;
esac

say() { printf '[build-linux] %s\n' "$*" >&2; }
die() { printf '[build-linux] error: %s\n' "$*" >&2; exit 1; }
t_start=$(date +%s)

# --- interpreter -----------------------------------------------------------------------------
PY="${SA3_BUILD_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || die "$PY not found: install Python 3.11 or set SA3_BUILD_PYTHON"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' ||
  die "$PY is not Python 3.11, which packaging/requirements-linux.txt is pinned for"

# --- build venv with the pinned tools and dependencies ---------------------------------------
VENV="${SA3_BUILD_VENV:-$ROOT/build/linux/venv-$VARIANT}"
BPY="$VENV/bin/python"
TORCH_PIN="$(grep -E '^torch==' "$PKG/requirements-linux.txt" | head -n1)"
[ -n "$TORCH_PIN" ] || die "packaging/requirements-linux.txt pins no torch version"
want="$(cat "$PKG/requirements-linux.txt" "$PKG/requirements-build.txt" | sha256sum | cut -c1-16)"
want="$want $VARIANT $("$PY" -c 'import platform; print(platform.python_version())')"
want="$want ${SA3_TORCH_INDEX_URL:-}"
stamp="$VENV/.sa3-build-installed"
if [ ! -f "$stamp" ] || ! grep -qxF -- "$want" "$stamp"; then
  say "preparing the build venv $VENV ($VARIANT)"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  index=()
  [ -n "${SA3_TORCH_INDEX_URL:-}" ] && index=(--index-url "$SA3_TORCH_INDEX_URL")
  if [ "$VARIANT" = cuda ]; then
    # '===' matches the version string exactly, so a local CPU wheel (2.13.0+cpu) that pip's
    # find-links may offer is not taken: pip gets the CUDA build the package index serves.
    "$BPY" -m pip install -q "${index[@]}" "torch===${TORCH_PIN#torch==}"
  else
    "$BPY" -m pip install -q "${index[@]}" "$TORCH_PIN"
  fi
  "$BPY" -m pip install -q -r "$PKG/requirements-linux.txt" -r "$PKG/requirements-build.txt"
  "$BPY" -m pip check >/dev/null || { "$BPY" -m pip check >&2; die "the pinned set is inconsistent"; }
  echo "$want" > "$stamp"
fi

# The variant asked for is the variant pip installed (a CPU package must not carry CUDA).
cuda="$("$BPY" -c 'import torch; print(torch.version.cuda or "")')"
if [ "$VARIANT" = cpu ] && [ -n "$cuda" ]; then
  die "pip installed a CUDA build of torch (CUDA $cuda) for the CPU variant; set SA3_TORCH_INDEX_URL to PyTorch's CPU wheel index and run again"
fi
if [ "$VARIANT" = cuda ] && [ -z "$cuda" ]; then
  die "pip installed a CPU-only torch for the CUDA variant; set SA3_TORCH_INDEX_URL to a CUDA wheel index"
fi

# Every dependency pyproject.toml declares must be pinned here, or the package would miss it.
"$BPY" - "$ROOT/pyproject.toml" "$PKG/requirements-linux.txt" <<'EOF'
import sys, tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
with open(sys.argv[1], "rb") as f:
    declared = {canonicalize_name(Requirement(r).name) for r in tomllib.load(f)["project"]["dependencies"]}
pinned = set()
for line in open(sys.argv[2]):
    line = line.split("#")[0].strip()
    if line:
        pinned.add(canonicalize_name(Requirement(line).name))
missing = sorted(declared - pinned)
if missing:
    sys.exit(f"[build-linux] error: pyproject.toml declares {', '.join(missing)} but "
             "packaging/requirements-linux.txt does not pin it; update the pins "
             "(see packaging/README.md, 'Updating the pins')")
EOF

# --- freeze ------------------------------------------------------------------------------------
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 1700000000)"
fi
export SOURCE_DATE_EPOCH PYTHONHASHSEED=0 SA3_VARIANT="$VARIANT"
# The build analyses the source tree, never an installed copy of sa3_studio.
export PYTHONPATH="$ROOT:$PKG"
export PYTHONNOUSERSITE=1
DIST="$ROOT/dist/linux-$VARIANT"
WORK="$ROOT/build/linux/work-$VARIANT"
APP="$DIST/sa3-studio"
say "freezing ($VARIANT, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH); this takes minutes"
t_freeze=$(date +%s)
(cd "$ROOT" && "$BPY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" "$PKG/sa3-studio.spec")
say "froze in $(( $(date +%s) - t_freeze )) s"

# --- desktop integration and build facts inside the folder -------------------------------------
install -m 0755 "$PKG/install-desktop.sh" "$APP/install-desktop.sh"
install -m 0755 "$PKG/uninstall-desktop.sh" "$APP/uninstall-desktop.sh"
install -m 0644 "$PKG/app-readme.txt" "$APP/README.txt"
"$BPY" - "$APP/BUILD-INFO.json" "$VARIANT" "$ROOT" <<'EOF'
import json, platform, subprocess, sys
from importlib.metadata import version
out, variant, root = sys.argv[1:4]
def git(*args):
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
sys.path.insert(0, root)
import sa3_studio, torch
info = {
    "name": "SA3 Studio",
    "version": sa3_studio.__version__,
    "variant": variant,
    "commit": git("rev-parse", "HEAD"),
    "source_date_epoch": int(__import__("os").environ["SOURCE_DATE_EPOCH"]),
    "python": platform.python_version(),
    "machine": platform.machine(),
    "torch": torch.__version__,
    "torch_cuda": torch.version.cuda,
    "pyside6": version("PySide6-Essentials"),
    "transformers": version("transformers"),
    "pyinstaller": version("pyinstaller"),
}
with open(out, "w") as f:
    json.dump(info, f, indent=2, sort_keys=True)
    f.write("\n")
EOF

# Model weights are never part of the package.
weights="$(find "$APP" -type f \( -name '*.safetensors' -o -name '*.ckpt' -o -name '*.pth' \
  -o -name '*.gguf' -o -name '*.onnx' \) | head -n5)"
[ -z "$weights" ] || die "model weights ended up in the package: $weights"

# Every library something in the folder needs is bundled or one every desktop has.
"$BPY" "$PKG/check_bundle.py" "$APP" || die "the folder misses libraries (see above)"

# Same time stamp on every file, so the archive depends on the content only.
find "$APP" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

size_mb=$(( $(du -sb "$APP" | cut -f1) / 1048576 ))
files=$(find "$APP" -type f | wc -l)
say "application folder: $APP ($size_mb MiB, $files files)"

# --- archive -----------------------------------------------------------------------------------
if [ "$ARCHIVE" = 1 ]; then
  version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/sa3_studio/__init__.py")"
  name="sa3-studio-$version-linux-$(uname -m)-$VARIANT.tar.gz"
  out="$ROOT/dist/$name"
  say "archiving to $out"
  gz=(gzip -n -6)
  command -v pigz >/dev/null 2>&1 && gz=(pigz -n -6)
  tar --format=gnu --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$DIST" -cf - sa3-studio | "${gz[@]}" > "$out.part"
  mv "$out.part" "$out"
  (cd "$ROOT/dist" && sha256sum "$name" > "$name.sha256")
  say "archive: $out ($(( $(stat -c %s "$out") / 1048576 )) MiB)"
fi
say "done in $(( $(date +%s) - t_start )) s"
