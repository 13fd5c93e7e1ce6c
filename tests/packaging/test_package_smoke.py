"""Package smoke test: build the Linux application folder, then start it as a user would.

Slow (the build takes minutes on two cores), so it is marked ``slow``. Run it with:

    python -m pytest -m slow tests/packaging/test_package_smoke.py -v

``SA3_PACKAGE_DIR=dist/linux-cpu/sa3-studio`` checks an existing folder instead of building one.
The folder's size and the start-up times are written to the terminal and to
build/linux/package-figures.json (the figures recorded in docs/performance.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

DEMO = REPO / "resources" / "demo" / "demo-loop-120bpm.wav"
START_RUNS = 5
START_TARGET_S = 3.0
# The CPU folder measured about 0.9 GiB; this bound catches a CUDA torch or an untrimmed Qt.
MAX_FOLDER_MIB = 1200
BUILD_TIMEOUT_S = 1800


def _check_bundle_module() -> ModuleType:
    """packaging/check_bundle.py, loaded from its file (packaging/ is not a package)."""
    path = REPO / "packaging" / "check_bundle.py"
    spec = importlib.util.spec_from_file_location("check_bundle", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up by name while the class bodies run.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _folder_mib(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 2**20


@pytest.fixture(scope="module")
def figures(pytestconfig: pytest.Config) -> Iterator[dict[str, object]]:
    """Figures the tests measure; reported at the end of the module."""
    found: dict[str, object] = {}
    yield found
    out = REPO / "build" / "linux" / "package-figures.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        # Shown even when pytest captures output: these figures are what the test is for.
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for key, value in sorted(found.items()):
                reporter.write_line(f"package {key}: {value}")


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory, figures: dict[str, object]) -> Path:
    """The application folder: SA3_PACKAGE_DIR, or a fresh build of the CPU variant."""
    given = os.environ.get("SA3_PACKAGE_DIR")
    if given:
        path = Path(given).resolve()
        if (path / "sa3-studio" / "sa3-studio").is_file():
            path = path / "sa3-studio"
        assert (path / "sa3-studio").is_file(), f"SA3_PACKAGE_DIR={given} holds no sa3-studio"
        figures["built_by_test"] = False
        return path
    log = tmp_path_factory.mktemp("build") / "build.log"
    started = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.run(
            ["bash", str(REPO / "packaging" / "build-linux.sh"), "--no-archive"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
            check=False,
            cwd=REPO,
        )
    tail = log.read_text()[-4000:]
    assert proc.returncode == 0, f"build failed:\n{tail}"
    figures["built_by_test"] = True
    figures["build_s"] = round(time.monotonic() - started, 1)
    return REPO / "dist" / "linux-cpu" / "sa3-studio"


def _user_env(home: Path, **extra: str) -> dict[str, str]:
    """A desktop user's environment: no Python variables, no virtual environment on PATH."""
    runtime = home / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(runtime),
        "HF_HUB_OFFLINE": "1",
    }
    env.update(extra)
    return env


def _start(
    app: Path, env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the packaged program; returns the result and its wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run(
        [str(app / "sa3-studio"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=env["HOME"],
    )
    return proc, time.perf_counter() - started


def test_folder_is_complete_trimmed_and_has_no_weights(
    app_dir: Path, figures: dict[str, object]
) -> None:
    size = _folder_mib(app_dir)
    figures["folder_mib"] = round(size, 1)
    figures["folder_files"] = sum(1 for p in app_dir.rglob("*") if p.is_file())
    assert size < MAX_FOLDER_MIB, f"the CPU folder grew to {size:.0f} MiB"

    info = json.loads((app_dir / "BUILD-INFO.json").read_text())
    assert info["variant"] == "cpu"
    assert info["torch_cuda"] is None
    for name in ("install-desktop.sh", "uninstall-desktop.sh", "README.txt"):
        assert (app_dir / name).is_file(), f"{name} is missing from the folder"
    internal = app_dir / "_internal"
    assert (internal / "resources" / "sa3-studio.desktop").is_file()
    assert (internal / "resources" / "demo" / DEMO.name).is_file()

    weights = [
        p for pat in ("*.safetensors", "*.ckpt", "*.pth", "*.gguf") for p in app_dir.rglob(pat)
    ]
    assert not weights, f"model weights in the package: {weights[:3]}"
    # What the spec trims stays out: torch's headers and test programs, Qt Quick, CUDA.
    assert not (internal / "torch" / "include").exists()
    assert not (internal / "torch" / "test").exists()
    assert not list(app_dir.rglob("libQt6Quick*"))
    assert not list(app_dir.rglob("libtorch_cuda*"))
    assert not list(app_dir.rglob("libcudart*"))

    report = _check_bundle_module().check_bundle(app_dir)
    figures["needs_glibc"] = report.glibc_text
    assert not report.unresolved, f"libraries needed but not bundled: {report.unresolved}"


def test_version_from_the_package(app_dir: Path, tmp_path: Path) -> None:
    import sa3_studio

    proc, _ = _start(app_dir, _user_env(tmp_path), "--version")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"SA3 Studio {sa3_studio.__version__}"


def test_window_opens_the_demo_and_exits_cleanly_offscreen(
    app_dir: Path, tmp_path: Path, figures: dict[str, object]
) -> None:
    env = _user_env(tmp_path, QT_QPA_PLATFORM="offscreen", SA3_STUDIO_EXIT_AFTER_START="1")
    times, cpu = [], []
    for _ in range(START_RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc, elapsed = _start(app_dir, env, str(DEMO))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        times.append(elapsed)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    figures["start_first_s"] = round(times[0], 2)
    figures["start_median_s"] = round(statistics.median(times), 2)
    figures["start_best_s"] = round(min(times), 2)
    figures["start_cpu_median_s"] = round(statistics.median(cpu), 2)
    figures["start_runs"] = START_RUNS
    # The window is up (and closed again) within the target from the package. The two cores are
    # shared with other jobs, which stretch the wall time (about 0.9 s when quiet, up to 2.5 s
    # at a load of 4); the program's own CPU time does not depend on them, is larger than its
    # wall time on a quiet machine (library threads), and grows with a real regression such as
    # torch imported at start-up. So the CPU time carries the target.
    assert statistics.median(cpu) < START_TARGET_S, (cpu, times)


def _python_dirs() -> list[str]:
    """Every Python installation's library folder on this machine, and the venvs."""
    candidates = {
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
        str(REPO / ".venv"),
        str(REPO / "build" / "linux" / "venv-cpu"),
    }
    for root in (Path("/usr/lib"), Path("/usr/local/lib")):
        candidates.update(str(p) for p in root.glob("python3*") if p.is_dir())
    return sorted(c for c in candidates if Path(c).is_dir())


def _without_python(command: list[str]) -> list[str]:
    """Wrap ``command`` so that it runs where no Python installation can be found.

    A private mount namespace lays an empty tmpfs over every Python library folder (so any
    interpreter on the machine fails to start), proves that, and then runs the command.
    """
    unshare = shutil.which("unshare")
    assert unshare is not None, "the no-Python check needs unshare (util-linux)"
    hide = _python_dirs()
    script = (
        'n="$1"; shift; i=0\n'
        'while [ "$i" -lt "$n" ]; do mount -t tmpfs -o size=1m none "$1"; shift; i=$((i+1)); done\n'
        'for py in python3 /usr/bin/python3 "$PYTHON_UNDER_TEST"; do\n'
        '  if "$py" -c "" 2>/dev/null; then echo "python still runs: $py" >&2; exit 97; fi\n'
        "done\n"
        'exec "$@"\n'
    )
    flags = ["--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        flags.append("--map-root-user")
    return [unshare, *flags, "sh", "-c", script, "sh", str(len(hide)), *hide, *command]


def test_starts_and_computes_where_no_python_is_installed(
    app_dir: Path, tmp_path: Path, figures: dict[str, object]
) -> None:
    env = _user_env(
        tmp_path,
        QT_QPA_PLATFORM="offscreen",
        SA3_STUDIO_EXIT_AFTER_START="1",
        PYTHON_UNDER_TEST=sys.executable,
    )
    exe = str(app_dir / "sa3-studio")
    gui = subprocess.run(
        _without_python([exe, str(DEMO)]),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert gui.returncode == 0, gui.stderr[-3000:]

    # The self-check runs the heavy stack the editor loads later: torch, the text encoder,
    # safetensors, tokenizers, libsndfile, soxr, PortAudio, Qt SVG, every sa3_studio module.
    env["SA3_PACKAGE_SELFCHECK"] = "1"
    started = time.perf_counter()
    check = subprocess.run(
        _without_python([exe, str(DEMO)]),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    figures["selfcheck_s"] = round(time.perf_counter() - started, 1)
    assert check.returncode == 0, check.stderr[-6000:]
    ok = [line for line in check.stderr.splitlines() if line.startswith("selfcheck ok:")]
    assert len(ok) == 11, check.stderr[-6000:]


def test_real_window_under_xvfb(app_dir: Path, tmp_path: Path) -> None:
    xvfb_run = shutil.which("xvfb-run")
    assert xvfb_run is not None, "install xvfb and xauth (scripts/test.sh does) for this test"
    env = _user_env(tmp_path, QT_QPA_PLATFORM="xcb", SA3_STUDIO_EXIT_AFTER_START="1")
    proc = subprocess.run(
        [xvfb_run, "-a", "-s", "-screen 0 1600x1000x24", str(app_dir / "sa3-studio"), str(DEMO)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Could not load the Qt platform plugin" not in proc.stderr
