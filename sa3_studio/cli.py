"""The ``sa3-studio`` command line.

With no subcommand it opens the editor window. ``--version`` and ``--help`` answer without
importing torch or Qt (they are imported only by the commands that need them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sa3_studio import __version__

log = logging.getLogger(__name__)

_EPILOG = """\
commands:
  (none)      open the editor window (optionally with an audio file or project)
  generate    text-to-audio
  inpaint     regenerate regions of an audio file in place
  continue    extend an audio file
  vary        audio-to-audio variation
  models      list, download and verify model weights

Run `sa3-studio COMMAND --help` for the options of a command.
"""


def _add_generation_options(p: argparse.ArgumentParser, *, needs_prompt: bool = True) -> None:
    p.add_argument("--model", default=None, help="model name (e.g. small-music) or folder path")
    p.add_argument("-p", "--prompt", required=needs_prompt, default="", help="text prompt")
    p.add_argument("--negative-prompt", default=None, help="negative prompt (-base models)")
    p.add_argument("--duration", type=float, default=None, help="seconds of audio to make")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: model's)")
    p.add_argument("--cfg-scale", type=float, default=None, help="guidance scale (-base models)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--batch", type=int, default=1, help="number of takes")
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="PATH[:STRENGTH]",
        help="LoRA file to apply (repeatable)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    p.add_argument(
        "--attention",
        choices=["exact", "official-cpu"],
        default="exact",
        help="padding semantics: exact (default) or the official CPU fallback",
    )
    p.add_argument("-o", "--output", default=None, help="output file (.wav or .flac)")
    p.add_argument("--no-prefix", action="store_true", help="do not add the model's prompt tags")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sa3-studio`` (imports nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog="sa3-studio",
        description="SA3 Studio: regenerate regions of a song in place with Stable Audio 3.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"SA3 Studio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument("path", nargs="?", help="audio file or project to open in the editor")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("generate", help="text-to-audio")
    _add_generation_options(g)

    inp = sub.add_parser("inpaint", help="regenerate regions of an audio file in place")
    _add_generation_options(inp)
    inp.add_argument("--inpaint-audio", required=True, help="source audio file (any format/rate)")
    inp.add_argument("--inpaint-start", type=float, action="append", required=True)
    inp.add_argument("--inpaint-end", type=float, action="append", required=True)
    inp.add_argument("--raw", action="store_true", help="write the model's whole decoded output")
    inp.add_argument("--crossfade-ms", type=float, default=25.0, help="seam crossfade length")

    cont = sub.add_parser("continue", help="extend an audio file")
    _add_generation_options(cont)
    cont.add_argument("--inpaint-audio", required=True, help="source audio file")
    cont.add_argument("--raw", action="store_true", help="write the model's whole decoded output")
    cont.add_argument("--crossfade-ms", type=float, default=25.0, help="seam crossfade length")

    vary = sub.add_parser("vary", help="audio-to-audio variation")
    _add_generation_options(vary)
    vary.add_argument("--init-audio", required=True, help="audio file to vary")
    vary.add_argument("--init-noise-level", type=float, default=0.9, help="0..1; lower = closer")

    models = sub.add_parser("models", help="list, download and verify model weights")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ml = msub.add_parser("list", help="models found on this machine")
    ml.add_argument("--dir", action="append", default=[], help="extra folder to search")
    md = msub.add_parser("download", help="download a model (explicit, needs network)")
    md.add_argument("name", help="model name, e.g. small-music")
    md.add_argument("--dir", default=None, help="download into this folder (default ./models)")
    mv = msub.add_parser("verify", help="check that model files are complete and readable")
    mv.add_argument("name", nargs="?", default=None, help="model name or folder (default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sa3-studio`` and ``python -m sa3_studio``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        from sa3_studio.main import run_gui

        return run_gui([args.path] if args.path else [])

    from sa3_studio.errors import Sa3Error

    try:
        from sa3_studio import commands

        return commands.run(args)
    except Sa3Error as exc:
        print(f"sa3-studio: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sa3-studio: interrupted", file=sys.stderr)
        return 130
