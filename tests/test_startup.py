"""Start-up stays light: the CLI's --version/--help and the GUI packages never load torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sa3_studio


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "module",
    ["sa3_studio", "sa3_studio.document", "sa3_studio.ui", "sa3_studio.app", "sa3_studio.cli"],
)
def test_importing_does_not_load_torch(module: str) -> None:
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    proc = _run(code)
    assert proc.returncode == 0, f"{module} imported {proc.stdout.strip()} {proc.stderr[-2000:]}"


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_cli_flags_do_not_load_torch_or_qt(flag: str) -> None:
    code = (
        "import sys\n"
        "from sa3_studio.cli import main\n"
        "try:\n"
        f"    main([{flag!r}])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "bad = [m for m in ('torch', 'PySide6', 'transformers') if m in sys.modules]\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = _run(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SA3 Studio" in proc.stdout or "sa3-studio" in proc.stdout


def test_version_matches_package() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sa3_studio", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"SA3 Studio {sa3_studio.__version__}"
