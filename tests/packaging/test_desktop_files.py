"""Desktop integration files: the .desktop entry, the MIME type, the icons, the demo clip, and the
install/uninstall scripts that put them into a user's ~/.local/share."""

from __future__ import annotations

import configparser
import importlib.util
import io
import os
import shutil
import stat
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[2]
RES = REPO / "resources"
DESKTOP = RES / "sa3-studio.desktop"
MIME_XML = RES / "sa3-studio-mime.xml"
SVG = RES / "icons" / "sa3-studio.svg"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
DEMO = RES / "demo" / "demo-loop-120bpm.wav"
PROJECT_TYPE = "application/x-sa3-studio-project"
AUDIO_TYPES = (
    "audio/wav",
    "audio/x-wav",
    "audio/flac",
    "audio/x-flac",
    "audio/mpeg",
    "audio/ogg",
    "audio/x-vorbis+ogg",
    "audio/aiff",
    "audio/x-aiff",
)
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


def _desktop_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def _unescape_string(value: str) -> str:
    """Undo the Desktop Entry string escapes (\\s \\n \\t \\r \\\\)."""
    out, i = [], 0
    table = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _split_exec(value: str) -> list[str]:
    """Split an Exec value into arguments as a launcher does (quoting rules of the spec)."""
    s = _unescape_string(value)
    args: list[str] = []
    cur: list[str] = []
    i, quoted, started = 0, False, False
    while i < len(s):
        c = s[i]
        if quoted:
            if c == "\\" and i + 1 < len(s) and s[i + 1] in '"`$\\':
                cur.append(s[i + 1])
                i += 1
            elif c == '"':
                quoted = False
            else:
                cur.append(c)
        elif c == '"':
            quoted, started = True, True
        elif c == " ":
            if cur or started:
                args.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(c)
        i += 1
    assert not quoted, f"unterminated quote in Exec={value!r}"
    if cur or started:
        args.append("".join(cur))
    return args


def _png_header(path: Path) -> tuple[int, int, int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR", f"{path} does not start with an IHDR chunk"
    assert length == 13, f"{path} has a malformed IHDR chunk"
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, color


def _check_entry_keys(entry: dict[str, str]) -> None:
    assert entry["Type"] == "Application"
    assert entry["Name"] == "SA3 Studio"
    assert entry["Icon"] == "sa3-studio"
    assert entry["Terminal"] == "false"
    assert {"AudioVideo", "Audio"} <= set(entry["Categories"].rstrip(";").split(";"))
    mime = entry["MimeType"].rstrip(";").split(";")
    assert PROJECT_TYPE in mime
    missing = [t for t in AUDIO_TYPES if t not in mime]
    assert not missing, f"MimeType lacks {missing}"
    args = _split_exec(entry["Exec"])
    # One file per launch: the editor opens one file or project at a time.
    assert args[-1] == "%f", entry["Exec"]
    assert not any(a in ("%F", "%u", "%U") for a in args)


def _validate(path: Path) -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is not None:
        proc = subprocess.run(
            [validator, str(path)], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert not proc.stdout.strip(), proc.stdout


def test_desktop_entry_is_valid_and_opens_projects_and_audio() -> None:
    entry = _desktop_entry(DESKTOP)
    _check_entry_keys(entry)
    assert _split_exec(entry["Exec"]) == ["sa3-studio", "%f"]
    assert entry["TryExec"] == "sa3-studio"
    _validate(DESKTOP)


def test_mime_type_declares_the_project_glob() -> None:
    root = ET.parse(MIME_XML).getroot()
    assert root.tag == f"{MIME_NS}mime-info"
    types = root.findall(f"{MIME_NS}mime-type")
    assert [t.get("type") for t in types] == [PROJECT_TYPE]
    (mt,) = types
    globs = [g.get("pattern") for g in mt.findall(f"{MIME_NS}glob")]
    assert globs == ["*.sa3proj"]
    comment = mt.find(f"{MIME_NS}comment")
    assert comment is not None
    assert comment.text == "SA3 Studio project"
    icon = mt.find(f"{MIME_NS}icon")
    assert icon is not None
    assert icon.get("name") == "sa3-studio"


def test_svg_icon_is_square_svg() -> None:
    root = ET.parse(SVG).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    x, y, w, h = (float(v) for v in root.get("viewBox", "").split())
    assert (x, y) == (0.0, 0.0)
    assert w == h > 0


@pytest.mark.parametrize("size", SIZES)
def test_png_icon_exists_at_size(size: int) -> None:
    path = RES / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "sa3-studio.png"
    assert path.is_file(), f"missing {path}; render it with packaging/render_icons.py"
    width, height, depth, color = _png_header(path)
    assert (width, height) == (size, size)
    assert (depth, color) == (8, 6), "icons are 8-bit RGBA"

    from PySide6.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull()
    # The rounded square fills the middle and leaves the corners transparent.
    assert image.pixelColor(size // 2, size // 2).alpha() == 255
    assert image.pixelColor(0, 0).alpha() == 0


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_clip_is_small_stereo_cd_quality_and_reproducible() -> None:
    info = sf.info(str(DEMO))
    assert (info.samplerate, info.channels, info.subtype) == (44_100, 2, "PCM_16")
    assert 2.0 <= info.duration <= 6.0
    assert DEMO.stat().st_size < 1_000_000
    data, _ = sf.read(str(DEMO), dtype="float32")  # (T, C)
    peak = float(np.max(np.abs(data)))
    assert 0.8 < peak <= 1.0
    # The left and right channels differ (panned parts), and the loop ends on silence.
    assert float(np.max(np.abs(data[:, 0] - data[:, 1]))) > 0.01
    assert np.all(data[-1] == 0.0)
    # The checked-in clip is what the generator writes (to the last bit, give or take one step
    # for a different libm's rounding).
    maker = _load(REPO / "packaging" / "make_demo_wav.py")
    fresh = io.BytesIO()
    sf.write(fresh, maker.synthesize(), 44_100, subtype="PCM_16", format="WAV")
    fresh.seek(0)
    want, _ = sf.read(fresh, dtype="int16")  # (T, C)
    have, _ = sf.read(str(DEMO), dtype="int16")  # (T, C)
    assert want.shape == have.shape
    assert int(np.max(np.abs(want.astype(np.int32) - have))) <= 1


@pytest.fixture
def fake_app(tmp_path: Path) -> Path:
    """An application folder whose program records its arguments; its path has a space."""
    app = tmp_path / "My Apps" / "sa3-studio"
    app.mkdir(parents=True)
    exe = app / "sa3-studio"
    exe.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/args.txt"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return app


def _user_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "home" / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "home" / "config"),
        SA3_BIN_DIR=str(tmp_path / "home" / "bin"),
    )
    for var in (
        "XDG_CURRENT_DESKTOP",
        "DESKTOP_SESSION",
        "KDE_FULL_SESSION",
        "GNOME_DESKTOP_SESSION_ID",
    ):
        env.pop(var, None)
    return env


def _script(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "packaging" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_install_and_uninstall_desktop_entry(tmp_path: Path, fake_app: Path) -> None:
    env = _user_env(tmp_path)
    data = Path(env["XDG_DATA_HOME"])
    proc = _script("install-desktop.sh", str(fake_app), env=env)
    assert proc.returncode == 0, proc.stderr

    desktop = data / "applications" / "sa3-studio.desktop"
    entry = _desktop_entry(desktop)
    _check_entry_keys(entry)
    exe = fake_app / "sa3-studio"
    assert _unescape_string(entry["TryExec"]) == str(exe)
    args = _split_exec(entry["Exec"])
    assert args == [str(exe), "%f"]
    _validate(desktop)
    # Launch it the way the desktop does for a double-clicked file: the program gets the path.
    song = tmp_path / "a song.wav"
    subprocess.run([a.replace("%f", str(song)) for a in args], check=True, timeout=30)
    assert (fake_app / "args.txt").read_text().splitlines() == [str(song)]

    for size in SIZES:
        icon = data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "sa3-studio.png"
        assert _png_header(icon)[:2] == (size, size)
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "sa3-studio.svg").is_file()
    assert (data / "mime" / "packages" / "sa3-studio.xml").read_bytes() == MIME_XML.read_bytes()
    if shutil.which("update-mime-database"):
        globs = (data / "mime" / "globs2").read_text()
        assert f"{PROJECT_TYPE}:*.sa3proj" in globs
    if shutil.which("xdg-mime"):
        mimeapps = (Path(env["XDG_CONFIG_HOME"]) / "mimeapps.list").read_text()
        assert f"{PROJECT_TYPE}=sa3-studio.desktop" in mimeapps
    link = Path(env["SA3_BIN_DIR"]) / "sa3-studio"
    assert link.is_symlink()
    assert link.resolve() == exe.resolve()

    proc = _script("uninstall-desktop.sh", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not desktop.exists()
    assert not list((data / "icons").rglob("sa3-studio.*"))
    assert not (data / "mime" / "packages" / "sa3-studio.xml").exists()
    assert not link.exists()
    assert not link.is_symlink()
    if shutil.which("update-mime-database"):
        assert PROJECT_TYPE not in (data / "mime" / "globs2").read_text()
    mimeapps_path = Path(env["XDG_CONFIG_HOME"]) / "mimeapps.list"
    if mimeapps_path.exists():
        assert "sa3-studio.desktop" not in mimeapps_path.read_text()
    # The application folder itself is the user's and stays.
    assert exe.is_file()


def test_install_refuses_a_folder_without_the_program(tmp_path: Path) -> None:
    env = _user_env(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _script("install-desktop.sh", str(empty), env=env)
    assert proc.returncode != 0
    assert "holds no sa3-studio program" in proc.stderr
    assert not (Path(env["XDG_DATA_HOME"]) / "applications" / "sa3-studio.desktop").exists()
