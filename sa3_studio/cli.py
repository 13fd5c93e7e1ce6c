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
  FILE        open the editor window with an audio file or project (or no FILE)
  generate    text-to-audio
  inpaint     regenerate regions of an audio file in place
  continue    extend an audio file
  vary        audio-to-audio variation
  loop        make a loop repeat without a seam (regenerate where its end meets its start)
  models      list, download and verify model weights
  serve       serve models to editors over HTTP (Ray Serve; the [server] extra)

Run `sa3-studio COMMAND --help` for the options of a command.
"""


CLI_SAMPLERS = ("pingpong", "euler", "dpmpp", "rk4")
"""engine.api.SAMPLERS, spelled out so that --help needs no numpy (a test keeps them equal)."""


def _add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        default=None,
        metavar="URL",
        help="run on an SA3 Studio server (http(s)://HOST:PORT) instead of this machine",
    )
    p.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="the server's token file (default: $SA3_STUDIO_TOKEN)",
    )


def _add_generation_options(p: argparse.ArgumentParser) -> None:
    _add_server_options(p)
    p.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="model name (e.g. small-music) or model folder (default: the first one installed)",
    )
    p.add_argument("-p", "--prompt", required=True, help="text prompt ('' for unconditional audio)")
    p.add_argument("--negative-prompt", default=None, help="negative prompt (-base models)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: model's)")
    p.add_argument("--cfg-scale", type=float, default=None, help="guidance scale (-base models)")
    p.add_argument(
        "--sampler",
        choices=CLI_SAMPLERS,
        default=None,
        help="sampler (default: pingpong for post-trained models, euler for -base models; "
        "dpmpp and rk4 are the other choices for -base models)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--batch", type=int, default=1, help="number of takes (made together)")
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="PATH[:STRENGTH]",
        help="LoRA file to apply, optionally with a strength (repeatable)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    p.add_argument(
        "--attention",
        choices=["exact", "official-cpu"],
        default="exact",
        help="padding semantics: exact (default) or the official CPU fallback",
    )
    p.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="FILE",
        help="output .wav, .flac, .ogg or .mp3; several takes are written as FILE_1.wav, "
        "FILE_2.wav, ... (default: COMMAND_SEED with the source's extension, or .wav)",
    )
    p.add_argument(
        "--rate",
        type=int,
        default=None,
        metavar="HZ",
        help="sample rate of the output (default: the source's; 44100 for generate)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 2),
        default=None,
        help="channels of the output (default: the source's; 2 for generate); a source with "
        "more than two channels needs --channels 2",
    )
    p.add_argument(
        "--subtype",
        choices=("PCM_16", "PCM_24", "FLOAT"),
        default=None,
        help="sample format of a .wav or .flac output (default: the source's when the "
        "container can hold it, else 32-bit float WAV or 24-bit FLAC)",
    )
    p.add_argument(
        "--context",
        type=float,
        default=None,
        metavar="SECONDS",
        help="longest stretch sent to the model at once (default: as long as it allows); "
        "longer sources go through windows around the regions",
    )
    level = p.add_mutually_exclusive_group()
    level.add_argument(
        "--limit",
        dest="level",
        action="store_const",
        const="limit",
        default="keep",
        help="new audio whose true peak is over -1 dBTP goes through a true-peak limiter to "
        "-1 dBTP before it is spliced (the source's own samples are never touched)",
    )
    level.add_argument(
        "--gain-to-ceiling",
        dest="level",
        action="store_const",
        const="gain",
        help="new audio whose true peak is over -1 dBTP is turned down, as a whole, to -1 dBTP",
    )
    p.add_argument("--bpm", type=float, default=None, help="tempo added to the prompt")
    p.add_argument("--key", default=None, help="key added to the prompt, e.g. 'A minor'")
    p.add_argument(
        "--no-prefix",
        action="store_true",
        help="do not add the model's prompt tags (e.g. 'TrackType: Music, ')",
    )


def _add_splice_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--raw",
        action="store_true",
        help="write the model's whole decoded output instead of the source with only the "
        "regenerated parts replaced",
    )
    p.add_argument(
        "--crossfade-ms",
        type=float,
        default=25.0,
        help="equal-power crossfade at each seam, inside the region (default 25)",
    )


COMMANDS = ("generate", "inpaint", "continue", "vary", "loop", "models", "serve")
_USAGE = "sa3-studio [-h] [--version] [-v] [FILE | COMMAND ...]"


def _base_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sa3-studio",
        usage=_USAGE,
        description="SA3 Studio: regenerate regions of a song in place with Stable Audio 3.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"SA3 Studio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    """The parser for opening the editor: ``sa3-studio [-v] [FILE]``."""
    parser = _base_parser()
    parser.add_argument("path", nargs="?", help="audio file or project to open in the editor")
    parser.set_defaults(command=None)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sa3-studio COMMAND ...`` (imports nothing heavy).

    The editor's optional FILE argument is parsed by :func:`build_gui_parser`: one optional
    positional before the subcommands would swallow the command name (``models list``).
    """
    parser = _base_parser()
    parser.set_defaults(path=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("generate", help="text-to-audio")
    _add_generation_options(g)
    g.add_argument(
        "--duration", type=float, default=None, help="seconds of audio to make (default 30)"
    )

    inp = sub.add_parser("inpaint", help="regenerate regions of an audio file in place")
    _add_generation_options(inp)
    inp.add_argument(
        "--inpaint-audio", required=True, metavar="FILE", help="source audio (any format/rate)"
    )
    inp.add_argument(
        "--inpaint-start",
        type=float,
        action="append",
        required=True,
        metavar="SECONDS",
        help="start of a region to regenerate (repeatable, one per --inpaint-end)",
    )
    inp.add_argument(
        "--inpaint-end",
        type=float,
        action="append",
        required=True,
        metavar="SECONDS",
        help="end of a region to regenerate (repeatable)",
    )
    inp.add_argument(
        "--inpaint-prompt",
        action="append",
        default=[],
        metavar="TEXT",
        help="a region's own prompt, in the order of the regions (repeatable; one per region, "
        "'' for the main prompt); regions with the same prompt share a pass",
    )
    _add_splice_options(inp)

    cont = sub.add_parser("continue", help="extend an audio file")
    _add_generation_options(cont)
    cont.add_argument(
        "--inpaint-audio", required=True, metavar="FILE", help="source audio (any format/rate)"
    )
    cont.add_argument(
        "--duration",
        type=float,
        default=None,
        help="total length in seconds (source plus continuation); for a source already "
        "longer, the seconds to add",
    )
    cont.add_argument("--add", type=float, default=None, help="seconds to add")
    cont.add_argument(
        "--before", action="store_true", help="add before the start instead of after the end"
    )
    _add_splice_options(cont)

    vary = sub.add_parser("vary", help="audio-to-audio variation")
    _add_generation_options(vary)
    vary.add_argument(
        "--init-audio", required=True, metavar="FILE", help="audio file to vary (any format/rate)"
    )
    vary.add_argument(
        "--init-noise-level", type=float, default=0.9, help="0..1; lower stays closer (0.9)"
    )
    vary.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds from the file's start to vary (default: all of it); the rest is kept",
    )

    loop = sub.add_parser(
        "loop", help="make a loop repeat without a seam (regenerate where its end meets its start)"
    )
    _add_generation_options(loop)
    loop.add_argument("--audio", required=True, metavar="FILE", help="the loop (any format/rate)")
    loop.add_argument(
        "--seam",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds regenerated around the join (default 2, at most a third of the loop)",
    )
    _add_splice_options(loop)

    models = sub.add_parser("models", help="list, download and verify model weights")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ml = msub.add_parser("list", help="models found on this machine")
    ml.add_argument("--dir", action="append", default=[], help="extra folder to search")
    _add_server_options(ml)
    md = msub.add_parser("download", help="download a model (explicit, needs network)")
    md.add_argument("name", help="model name, e.g. small-music")
    md.add_argument(
        "--dir", default=None, help="download into this folder (default: the Hugging Face cache)"
    )
    mv = msub.add_parser("verify", help="check that model files are complete and readable")
    mv.add_argument("name", nargs="?", default=None, help="model name or folder (default: all)")
    mv.add_argument("--dir", action="append", default=[], help="extra folder to search")

    from sa3_studio.server.cli import add_serve_parser

    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``sa3-studio`` and ``python -m sa3_studio``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser() if first is None or first in COMMANDS else build_gui_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(
        # Commands print their own progress; their library records only when asked (-v).
        level=logging.DEBUG
        if args.verbose
        else (logging.INFO if args.command is None else logging.WARNING),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        from sa3_studio.main import run_gui

        return run_gui([args.path] if args.path else [])

    from sa3_studio.errors import Cancelled, Sa3Error

    try:
        if args.command == "serve":
            from sa3_studio.server.cli import run_serve

            return run_serve(args)
        from sa3_studio import commands

        return commands.run(args)
    except Cancelled as exc:
        print(f"sa3-studio: {exc}", file=sys.stderr)
        return 130
    except Sa3Error as exc:
        print(f"sa3-studio: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sa3-studio: interrupted", file=sys.stderr)
        return 130
