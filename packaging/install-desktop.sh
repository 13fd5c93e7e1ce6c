#!/usr/bin/env bash
# Add SA3 Studio to this user's desktop: applications menu entry, icon, the project file type
# (.sa3proj, application/x-sa3-studio-project, opened by SA3 Studio on double-click) and "Open with
# SA3 Studio" for audio files. Installs into ~/.local/share (XDG_DATA_HOME) only; no root needed.
#
#   usage: install-desktop.sh [APP_FOLDER]
#
# APP_FOLDER is the application folder that holds the `sa3-studio` program. Default: the folder
# this script is in when it ships inside one, else the repository's dist/linux-cpu/sa3-studio.
# Also links ~/.local/bin/sa3-studio to the program (SA3_BIN_DIR overrides the folder; set it
# empty to skip). Run it again after moving the folder. uninstall-desktop.sh undoes all of it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { printf '[sa3-studio] %s\n' "$*" >&2; }
die() { printf '[sa3-studio] error: %s\n' "$*" >&2; exit 1; }

if [ $# -gt 1 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  [ $# -gt 1 ] && exit 2
  exit 0
fi
if [ $# -eq 1 ]; then
  app="$1"
elif [ -x "$here/sa3-studio" ] && [ -f "$here/sa3-studio" ]; then
  app="$here"
else
  app="$here/../dist/linux-cpu/sa3-studio"
fi
[ -d "$app" ] || die "no application folder at $app: build one with 'bash packaging/build-linux.sh' or name the folder that holds sa3-studio"
app="$(cd "$app" && pwd)"
exe="$app/sa3-studio"
[ -f "$exe" ] && [ -x "$exe" ] || die "$app holds no sa3-studio program: name the folder that holds it"

# Desktop files, icons and MIME type: inside the application folder when it ships them, else
# the repository's resources/.
if [ -f "$app/_internal/resources/sa3-studio.desktop" ]; then
  res="$app/_internal/resources"
elif [ -f "$here/../resources/sa3-studio.desktop" ]; then
  res="$(cd "$here/../resources" && pwd)"
else
  die "cannot find sa3-studio.desktop next to $app or in the repository"
fi

data="${XDG_DATA_HOME:-$HOME/.local/share}"
manifest_dir="$data/sa3-studio"
manifest="$manifest_dir/installed-files.txt"
mkdir -p "$data/applications" "$data/mime/packages" "$manifest_dir"
installed=()

# Exec= quoting (Desktop Entry Specification): inside double quotes escape \ " ` $; then the
# string-value escape doubles every backslash; a literal % is %%.
quoted="$(printf '%s' "$exe" | sed -e 's/[\\"`$]/\\&/g' -e 's/\\/\\\\/g' -e 's/%/%%/g')"
tryexec="$(printf '%s' "$exe" | sed -e 's/\\/\\\\/g')"
desktop="$data/applications/sa3-studio.desktop"
tmp="$(mktemp "$desktop.XXXXXX")"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    Exec=*) printf 'Exec="%s" %%f\n' "$quoted" ;;
    TryExec=*) printf 'TryExec=%s\n' "$tryexec" ;;
    *) printf '%s\n' "$line" ;;
  esac
done < "$res/sa3-studio.desktop" > "$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$desktop"
installed+=("$desktop")

for png in "$res"/icons/hicolor/*/apps/sa3-studio.png; do
  size="$(basename "$(dirname "$(dirname "$png")")")"
  dest="$data/icons/hicolor/$size/apps/sa3-studio.png"
  install -D -m 0644 "$png" "$dest"
  installed+=("$dest")
done
dest="$data/icons/hicolor/scalable/apps/sa3-studio.svg"
install -D -m 0644 "$res/icons/sa3-studio.svg" "$dest"
installed+=("$dest")

dest="$data/mime/packages/sa3-studio.xml"
install -m 0644 "$res/sa3-studio-mime.xml" "$dest"
installed+=("$dest")

bin_dir="${SA3_BIN_DIR-$HOME/.local/bin}"
if [ -n "$bin_dir" ]; then
  link="$bin_dir/sa3-studio"
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    say "left $link alone: it is not a link this script made"
  else
    mkdir -p "$bin_dir"
    ln -sfn "$exe" "$link"
    installed+=("$link")
  fi
fi

printf '%s\n' "${installed[@]}" > "$manifest"

# Refresh the caches the desktop reads; each tool is optional (a desktop without it rescans).
if command -v update-mime-database >/dev/null 2>&1; then
  update-mime-database "$data/mime" >/dev/null 2>&1 || say "update-mime-database failed; log out and in to see the project file type"
fi
if command -v update-desktop-database >/dev/null 2>&1; then
  update-desktop-database -q "$data/applications" 2>/dev/null || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$data/icons/hicolor/index.theme" ]; then
  gtk-update-icon-cache -q -t -f "$data/icons/hicolor" 2>/dev/null || true
fi
# Double-clicking a project opens SA3 Studio. Audio types only get "Open with SA3 Studio": the
# user's default audio player stays the default.
if command -v xdg-mime >/dev/null 2>&1; then
  xdg-mime default sa3-studio.desktop application/x-sa3-studio-project 2>/dev/null ||
    say "xdg-mime could not make SA3 Studio the default for .sa3proj projects"
fi

say "installed the desktop entry for $exe"
say "files: $manifest"
