#!/usr/bin/env bash
# Remove what install-desktop.sh added for this user: the applications menu entry, the icons, the
# project file type, the "open .sa3proj with SA3 Studio" default and the ~/.local/bin link. The
# application folder itself, settings, projects and model weights are left untouched.
#
#   usage: uninstall-desktop.sh
set -euo pipefail

say() { printf '[sa3-studio] %s\n' "$*" >&2; }
if [ $# -gt 0 ]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  case "$1" in -h|--help) exit 0 ;; *) exit 2 ;; esac
fi

data="${XDG_DATA_HOME:-$HOME/.local/share}"
manifest="$data/sa3-studio/installed-files.txt"
removed=0

remove() {
  if [ -L "$1" ] || [ -f "$1" ]; then
    rm -f -- "$1"
    removed=$((removed + 1))
  fi
}

if [ -f "$manifest" ]; then
  while IFS= read -r f; do
    # Only paths this script family writes; a damaged manifest cannot delete anything else.
    case "$f" in
      */applications/sa3-studio.desktop|*/apps/sa3-studio.png|*/apps/sa3-studio.svg|\
      */mime/packages/sa3-studio.xml) remove "$f" ;;
      */sa3-studio)
        # The ~/.local/bin link: only when it still is a link to an sa3-studio program.
        if [ -L "$f" ] && [ "$(basename "$(readlink "$f")")" = sa3-studio ]; then remove "$f"; fi ;;
    esac
  done < "$manifest"
  rm -f -- "$manifest"
  rmdir -- "$data/sa3-studio" 2>/dev/null || true
else
  # No manifest (installed by an older script or by hand): the well-known names.
  remove "$data/applications/sa3-studio.desktop"
  remove "$data/mime/packages/sa3-studio.xml"
  remove "$data/icons/hicolor/scalable/apps/sa3-studio.svg"
  for png in "$data"/icons/hicolor/*/apps/sa3-studio.png; do remove "$png"; done
fi

# Drop the default-application entry for projects (the line install-desktop.sh's xdg-mime wrote).
mimeapps="${XDG_CONFIG_HOME:-$HOME/.config}/mimeapps.list"
if [ -f "$mimeapps" ] && grep -q 'sa3-studio.desktop' "$mimeapps"; then
  sed -i -e '/^application\/x-sa3-studio-project=sa3-studio\.desktop;\{0,1\}$/d' \
         -e 's/sa3-studio\.desktop;//g' "$mimeapps"
fi

if command -v update-mime-database >/dev/null 2>&1 && [ -d "$data/mime" ]; then
  update-mime-database "$data/mime" >/dev/null 2>&1 || true
fi
if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$data/applications" ]; then
  update-desktop-database -q "$data/applications" 2>/dev/null || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$data/icons/hicolor/index.theme" ]; then
  gtk-update-icon-cache -q -t -f "$data/icons/hicolor" 2>/dev/null || true
fi
say "removed $removed file(s) of the SA3 Studio desktop entry"
