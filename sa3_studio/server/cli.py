"""``sa3-studio serve``: run SA3 Studio as a server on Ray Serve.

:func:`add_serve_parser` registers the command's options (nothing heavy is imported);
:func:`run_serve` starts or joins Ray, deploys the application and waits for Ctrl+C or
SIGTERM, then shuts Serve and (a local) Ray down.

The bearer token: ``--token-file`` (default ``~/.config/sa3-studio/server-token``) is created
with a random token, readable only by its owner, on first start; its path is printed, the
token never is. ``--insecure-no-token`` serves without one, and then only on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import signal
import stat
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sa3_studio.errors import Sa3Error
from sa3_studio.server.process import RAY_PREFIX, READY_PREFIX

DEFAULT_PORT = 8000


def default_token_file() -> Path:
    """``$XDG_CONFIG_HOME/sa3-studio/server-token`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sa3-studio" / "server-token"


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` and its options on the CLI's subcommands."""
    s = sub.add_parser(
        "serve",
        help="serve models to editors and scripts over HTTP (needs the [server] extra)",
        description="Start a local Ray instance (or join a cluster with --address) and serve "
        "SA3 Studio's API on it. Clients connect with the URL and the token file printed.",
    )
    s.add_argument("--address", default=None, help="Ray cluster to join (default: start one)")
    s.add_argument("--models", default=None, metavar="DIR", help="folder of model folders")
    s.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="model to serve, by name or folder (repeatable; default: every model in --models)",
    )
    s.add_argument("--loras", default=None, metavar="DIR", help="folder of LoRAs to offer")
    scale = s.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=int, default=1, help="replicas per model (default 1)")
    scale.add_argument(
        "--autoscale", default=None, metavar="MIN:MAX", help="scale replicas with the queue"
    )
    s.add_argument(
        "--gpus-per-replica", type=float, default=0.0, help="GPUs each replica reserves (0 = CPU)"
    )
    s.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs each replica reserves")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    s.add_argument("--host", default=None, help="address to listen on (default 0.0.0.0)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8000)")
    s.add_argument("--token-file", default=None, help="bearer token file (made on first start)")
    s.add_argument("--tls-cert", default=None, metavar="PEM", help="HTTPS certificate")
    s.add_argument("--tls-key", default=None, metavar="PEM", help="HTTPS private key")
    s.add_argument(
        "--insecure-no-token",
        action="store_true",
        help="serve without a token (then only on 127.0.0.1)",
    )
    s.add_argument("--max-upload-mb", type=float, default=256.0, help="largest upload (MB)")
    s.add_argument("--max-queued", type=int, default=64, help="jobs queued per model before busy")
    s.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of a local Ray instance (default: all)"
    )
    s.add_argument(
        "--object-store-mb", type=int, default=None, help="object store of a local Ray instance"
    )


# -- token -------------------------------------------------------------------------------------


def ensure_token(path: Path) -> tuple[str, bool]:
    """The token in ``path``; a new random one (owner-only file) if it does not exist.

    Returns:
        ``(token, created)``.

    Raises:
        Sa3Error: the file is readable by others, empty, or cannot be written.
    """
    path = path.expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise Sa3Error(f"Cannot create the token file {path} ({exc.strerror}).") from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(token + "\n")
        return token, True
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Sa3Error(
            f"The token file {path} can be read by other users; run `chmod 600 {path}` "
            "(or delete it to get a new token) and start again."
        )
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise Sa3Error(
            f"The token in {path} is empty or shorter than 16 characters; delete the file to "
            "get a new random token."
        )
    return token, False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _autoscale(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    lo, sep, hi = text.partition(":")
    try:
        pair = (int(lo), int(hi)) if sep else None
    except ValueError:
        pair = None
    if pair is None or not 0 <= pair[0] <= pair[1] or pair[1] < 1:
        raise Sa3Error(f"--autoscale {text!r} is not MIN:MAX (e.g. 1:4).")
    return pair


# -- models ------------------------------------------------------------------------------------


def _served_models(args: argparse.Namespace, replicas: str) -> dict[str, object]:
    from sa3_studio.engine import registry
    from sa3_studio.engine.api import BASE_DEFAULT_STEPS, DEFAULT_STEPS
    from sa3_studio.engine.weights import weights_hash
    from sa3_studio.remote.wire import ServerModel
    from sa3_studio.server.config import ServedModel, find_loras

    env = dict(os.environ)
    if args.models:
        env["SA3_STUDIO_MODELS"] = str(Path(args.models).expanduser())
    infos = []
    if args.model:
        infos = [registry.resolve_info(name, env=env) for name in args.model]
    elif args.models:
        root = Path(args.models).expanduser().resolve()
        infos = [
            i
            for i in registry.discover(env=env)
            if i.complete and Path(i.path).resolve().parent == root
        ]
    if not infos:
        raise Sa3Error(
            "No model to serve: give --model NAME (repeatable) or --models DIR with model "
            "folders in it."
        )
    device = args.device if args.device != "auto" else ("cuda" if args.gpus_per_replica else "cpu")
    models: dict[str, object] = {}
    for info in infos:
        if info.name in models:
            raise Sa3Error(f"Two models are named {info.name!r}; serve only one of them.")
        loras = find_loras(args.loras, info.name)
        server_model = ServerModel(
            name=info.name,
            kind="base" if info.is_base else "post-trained",
            family=info.family,
            sample_rate=info.sample_rate,
            max_seconds=info.max_seconds,
            default_steps=BASE_DEFAULT_STEPS if info.is_base else DEFAULT_STEPS,
            device=device,
            dtype=args.dtype,
            weights_hash=weights_hash(Path(info.path) / registry.WEIGHTS_FILE),
            loras=tuple(loras),
            replicas=replicas,
        )
        models[info.name] = ServedModel(server_model, str(Path(info.path).resolve()), loras)
    return models


# -- the command -------------------------------------------------------------------------------


def run_serve(
    args: argparse.Namespace, *, out: TextIO | None = None, stop: threading.Event | None = None
) -> int:
    """Run the server until Ctrl+C / SIGTERM (or ``stop``); returns the exit code.

    Raises:
        Sa3Error: bad options, no models, a token file problem, Ray not installed.
    """
    out = out or sys.stdout
    try:
        import ray
        from ray import serve
    except ImportError:
        raise Sa3Error(
            "`sa3-studio serve` needs Ray Serve: install it with "
            "`pip install 'sa3-studio[server]'`."
        ) from None
    from sa3_studio.server.config import ServerSettings, UploadLimits, token_digest
    from sa3_studio.server.deploy import APP_NAME, Scaling, build_application

    if args.replicas < 1:
        raise Sa3Error("--replicas must be at least 1.")
    if args.gpus_per_replica < 0 or args.cpus_per_replica < 0:
        raise Sa3Error("--gpus-per-replica and --cpus-per-replica must be 0 or more.")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise Sa3Error("HTTPS needs both --tls-cert and --tls-key.")
    for p in (args.tls_cert, args.tls_key):
        if p and not Path(p).expanduser().is_file():
            raise Sa3Error(f"There is no file at {p}; check --tls-cert / --tls-key.")
    scaling = Scaling(
        replicas=args.replicas,
        autoscale=_autoscale(args.autoscale),
        gpus=args.gpus_per_replica,
        cpus=args.cpus_per_replica,
        max_queued=args.max_queued,
    )
    token_path: Path | None = None
    if args.insecure_no_token:
        host = args.host or "127.0.0.1"
        if not _is_loopback(host):
            raise Sa3Error(
                f"--insecure-no-token serves only on 127.0.0.1, not on {host}; drop --host or "
                "use a token."
            )
        digest = ""
    else:
        host = args.host or "0.0.0.0"
        token_path = Path(args.token_file).expanduser() if args.token_file else default_token_file()
        token, created = ensure_token(token_path)
        digest = token_digest(token)
        del token
        what = "Created a new token in" if created else "Token in"
        out.write(f"{what} {token_path} (give this file to clients; keep it private)\n")
    models = _served_models(args, scaling.describe())
    roots = tuple(str(Path(p).expanduser().resolve()) for p in (args.models, args.loras) if p)
    settings = ServerSettings(
        models=models,  # type: ignore[arg-type]
        token_sha256=digest,
        limits=UploadLimits(max_bytes=int(args.max_upload_mb * 1024 * 1024)),
        device=args.device,
        dtype=args.dtype,
        scrub_roots=(*roots, str(Path.home())),
    )

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reporting home
    local = args.address is None
    init: dict[str, object] = {"include_dashboard": False, "log_to_driver": True}
    if local:
        if args.num_cpus is not None:
            init["num_cpus"] = args.num_cpus
        if args.object_store_mb is not None:
            init["object_store_memory"] = args.object_store_mb * 1024 * 1024
    else:
        init["address"] = args.address
    stop = stop or threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in _SIGNALS}
    ray.init(**init)
    try:
        http: dict[str, object] = {"host": host, "port": args.port}
        if args.tls_cert:
            http["ssl_certfile"] = str(Path(args.tls_cert).expanduser())
            http["ssl_keyfile"] = str(Path(args.tls_key).expanduser())
        serve.start(http_options=http)
        serve.run(build_application(settings, scaling), name=APP_NAME, route_prefix="/")
        out.write(f"{RAY_PREFIX}{ray.get_runtime_context().gcs_address}\n")
        scheme = "https" if args.tls_cert else "http"
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        out.write(
            f"{READY_PREFIX}{scheme}://{shown}:{args.port} serving "
            f"{', '.join(models)} ({scaling.describe()} replica(s) each)\n"
        )
        out.flush()
        while not stop.wait(0.5):
            pass
        out.write("Stopping the server...\n")
        out.flush()
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


_SIGNALS: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)
