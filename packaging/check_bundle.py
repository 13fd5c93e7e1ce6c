"""Check the shared libraries of a built application folder (stdlib only).

Every library a bundled program or library needs (ELF DT_NEEDED) must be either in the folder or
in packaging/system-libs.txt, the short list of libraries every Linux desktop provides. Trimming
the folder can therefore never drop a library something still needs without the build saying so.
It also reports the newest glibc symbol version the folder uses: the oldest glibc it runs on.

    python packaging/check_bundle.py dist/linux-cpu/sa3-studio
"""

from __future__ import annotations

import logging
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SYSTEM_LIBS = Path(__file__).resolve().parent / "system-libs.txt"

_SHT_DYNAMIC = 6
_SHT_GNU_VERNEED = 0x6FFFFFFE
_DT_NEEDED = 1


@dataclass(frozen=True)
class ElfDeps:
    """What one ELF file asks of the dynamic loader."""

    needed: tuple[str, ...]
    versions: tuple[str, ...]  # e.g. ("GLIBC_2.34", "GLIBCXX_3.4.29")


@dataclass
class BundleReport:
    """Outcome of :func:`check_bundle`."""

    elf_files: int = 0
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # soname -> needed by
    from_system: set[str] = field(default_factory=set)
    glibc: tuple[int, ...] = ()
    glibcxx: tuple[int, ...] = ()

    @property
    def glibc_text(self) -> str:
        """The newest glibc version required, as text (e.g. '2.34')."""
        return ".".join(str(p) for p in self.glibc)

    @property
    def glibcxx_text(self) -> str:
        """The newest libstdc++ symbol version required (e.g. '3.4.30')."""
        return ".".join(str(p) for p in self.glibcxx)


def read_elf_deps(path: Path) -> ElfDeps | None:
    """DT_NEEDED entries and required symbol versions of a 64-bit little-endian ELF file.

    Args:
        path: any file.

    Returns:
        None when the file is not such an ELF file.
    """
    with path.open("rb") as fh:
        head = fh.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return None
        data = head + fh.read()
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
    ]  # name, type, flags, addr, offset, size, link, info, addralign, entsize

    def string(table: int, offset: int) -> str:
        start = sections[table][4] + offset
        return data[start : data.index(b"\0", start)].decode("utf-8", "replace")

    needed: list[str] = []
    versions: list[str] = []
    for _, kind, _, _, offset, size, link, info, _, _ in sections:
        if kind == _SHT_DYNAMIC:
            for pos in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, pos)
                if tag == _DT_NEEDED:
                    needed.append(string(link, value))
                elif tag == 0:
                    break
        elif kind == _SHT_GNU_VERNEED:
            pos = offset
            for _ in range(info):
                _, count, _, aux, nxt = struct.unpack_from("<HHIII", data, pos)
                apos = pos + aux
                for _ in range(count):
                    _, _, _, name, anext = struct.unpack_from("<IHHII", data, apos)
                    versions.append(string(link, name))
                    apos += anext
                pos += nxt
    return ElfDeps(tuple(needed), tuple(versions))


def system_libs(path: Path = SYSTEM_LIBS) -> set[str]:
    """The sonames the package may take from the user's system (one per line, # comments)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line)
    return names


def check_bundle(app: Path, allowed: set[str] | None = None) -> BundleReport:
    """Resolve every DT_NEEDED of every ELF file in ``app`` against the folder and ``allowed``.

    Args:
        app: the application folder.
        allowed: sonames the system provides (default: packaging/system-libs.txt).

    Returns:
        The report; ``unresolved`` is empty when the folder is complete.
    """
    allowed = system_libs() if allowed is None else allowed
    files = [p for p in app.rglob("*") if p.is_file() and not p.is_symlink()]
    bundled = {p.name for p in app.rglob("*") if p.is_file()}
    report = BundleReport()
    newest: dict[str, tuple[int, ...]] = {"GLIBC_": (), "GLIBCXX_": ()}
    for path in files:
        deps = read_elf_deps(path)
        if deps is None:
            continue
        report.elf_files += 1
        for soname in deps.needed:
            if soname in bundled:
                continue
            if soname in allowed:
                report.from_system.add(soname)
            else:
                report.unresolved.setdefault(soname, []).append(str(path.relative_to(app)))
        for version in deps.versions:
            for prefix in newest:
                rest = version[len(prefix) :]
                if version.startswith(prefix) and rest[:1].isdigit():
                    parts = tuple(int(p) for p in rest.split(".") if p.isdigit())
                    newest[prefix] = max(newest[prefix], parts)
    report.glibc = newest["GLIBC_"]
    report.glibcxx = newest["GLIBCXX_"]
    return report


def main(argv: list[str]) -> int:
    """Check the folder in ``argv[0]``; returns 0 when every library resolves."""
    logging.basicConfig(level=logging.INFO, format="[check-bundle] %(message)s")
    if len(argv) != 1:
        log.error("usage: check_bundle.py APP_FOLDER")
        return 2
    report = check_bundle(Path(argv[0]))
    log.info(
        "%d ELF files; from the system: %s",
        report.elf_files,
        " ".join(sorted(report.from_system)),
    )
    log.info(
        "needs glibc %s and libstdc++ GLIBCXX_%s or newer",
        report.glibc_text,
        report.glibcxx_text,
    )
    for soname, users in sorted(report.unresolved.items()):
        log.error("%s is needed by %s but is neither bundled nor listed", soname, users[0])
    return 1 if report.unresolved else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
