"""The editor's choice of engine: this computer, or an SA3 Studio server (Settings > Engine).

With "Server" chosen, the Generate panel lists the server's models (as model entries whose
path is ``server:NAME@URL``) and the model thread loads a
:class:`~sa3_studio.remote.pipeline.RemotePipeline` for them instead of a local pipeline, so
the queue, progress, cancel and takes work unchanged. An unreachable server shows as one
disabled entry in the model list whose tooltip says why; loading or generating against it fails
with that message after at most the client's timeout, never a hang.

The composition root wires :func:`engine_factory` and :func:`engine_catalog` around the local
ones. No torch and no Ray here.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

from sa3_studio.app.engine_client import ModelCatalog
from sa3_studio.app.settings import AppSettings, Preferences
from sa3_studio.engine.api import ModelInfo, PipelineFactory
from sa3_studio.remote.client import RemoteClient, RemoteError
from sa3_studio.remote.pipeline import RemotePipeline
from sa3_studio.remote.wire import ServerModel

log = logging.getLogger(__name__)

ENGINE_LOCAL = "local"
ENGINE_SERVER = "server"
ENGINES = (ENGINE_LOCAL, ENGINE_SERVER)

SERVER_PREFIX = "server:"
LIST_TIMEOUT_S = 4.0
"""Listing a server's models happens on the GUI thread: it waits at most this long."""
JOB_TIMEOUT_S = 30.0
"""Longest silence tolerated from the server during a job (it speaks every half second)."""


def server_path(name: str, url: str) -> str:
    """The model-entry path of a server's model (unique per server and model)."""
    return f"{SERVER_PREFIX}{name}@{url}"


def parse_server_path(path: str) -> tuple[str, str] | None:
    """``(name, url)`` of a :func:`server_path`, or ``None`` for a local folder."""
    if not path.startswith(SERVER_PREFIX):
        return None
    name, sep, url = path[len(SERVER_PREFIX) :].partition("@")
    return (name, url) if sep and name and url else None


def model_info(model: ServerModel, url: str) -> ModelInfo:
    """A server's model as the model list shows it."""
    return ModelInfo(
        name=model.name,
        path=server_path(model.name, url),
        family=model.family,
        objective="rectified_flow" if model.is_base else "rf_denoiser",
        sample_rate=model.sample_rate,
        max_seconds=model.max_seconds,
        complete=True,
        source=f"server {url} ({model.device}, {model.replicas} replica(s))",
    )


def describe_server(url: str, token: str, *, timeout: float = LIST_TIMEOUT_S) -> tuple[bool, str]:
    """Ask a server for its models: ``(reachable, a sentence for the Test button)``."""
    if not url.strip():
        return False, "Enter the server's address, e.g. http://gpu-box:8000."
    try:
        client = RemoteClient(url, token, timeout=timeout)
        models = client.models()
    except RemoteError as exc:
        return False, str(exc)
    if not models:
        return True, f"Connected to {client.url}, but it offers no model."
    names = ", ".join(
        f"{m.name} ({m.kind}, up to {m.max_seconds:.0f} s, {m.device})" for m in models
    )
    return True, f"Connected to {client.url}. Models: {names}."


class _Target:
    """The server settings, shared with the model thread (read under a lock)."""

    def __init__(self, prefs: Preferences) -> None:
        self._lock = threading.Lock()
        self._token = prefs.server_token

    def update(self, prefs: Preferences) -> None:
        with self._lock:
            self._token = prefs.server_token

    @property
    def token(self) -> str:
        with self._lock:
            return self._token


def engine_factory(settings: AppSettings, local: PipelineFactory) -> PipelineFactory:
    """The model thread's factory: server entries load a RemotePipeline, folders ``local``."""
    target = _Target(settings.preferences())
    settings.preferences_changed.connect(target.update)

    def factory(path: Any, **kwargs: Any) -> Any:
        parsed = parse_server_path(str(path))
        if parsed is None:
            return local(path, **kwargs)
        name, url = parsed
        return RemotePipeline.connect(url, target.token, name, timeout=JOB_TIMEOUT_S)

    return factory


def engine_catalog(settings: AppSettings, local: ModelCatalog) -> ModelCatalog:
    """The model list: the local catalog, or the server's models when "Server" is chosen."""

    def discover() -> list[ModelInfo]:
        prefs = settings.preferences()
        if prefs.engine != ENGINE_SERVER:
            return local.discover()
        return server_models(prefs.server_url, prefs.server_token)

    def places() -> tuple[str, ...]:
        prefs = settings.preferences()
        if prefs.engine == ENGINE_SERVER:
            return (f"{prefs.server_url} (server)",)
        return local.search_places()

    return dataclasses.replace(local, discover=discover, search_places=places)


def server_models(url: str, token: str, *, timeout: float = LIST_TIMEOUT_S) -> list[ModelInfo]:
    """The server's models; an unreachable server gives one disabled entry that says why."""
    try:
        client = RemoteClient(url, token, timeout=timeout)
        return [model_info(m, client.url) for m in client.models()]
    except RemoteError as exc:
        log.warning("cannot list the server's models: %s", exc)
        return [
            ModelInfo(
                name="Server not reachable",
                path="",
                family="",
                objective="",
                sample_rate=0,
                max_seconds=0.0,
                complete=False,
                missing=(str(exc),),
                source=url,
            )
        ]


TestConnection = Callable[[str, str], tuple[bool, str]]
"""``(url, token) -> (reachable, sentence)``: what the settings dialog's Test button runs."""
