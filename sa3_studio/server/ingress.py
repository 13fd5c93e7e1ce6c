"""The HTTP API (FastAPI), version 1; see docs/server.md. No Ray imports here.

:func:`build_api` makes the ASGI app from the server settings and a :class:`Gateway` (how jobs
reach the engine replicas: Ray Serve handles in production, see :mod:`sa3_studio.server.deploy`).

Security, in the order a request meets it (:class:`TokenGate`, before any body is read):

1. a query string that carries anything like a token is refused (400 ``token_in_query``);
2. ``Authorization: Bearer TOKEN`` is required on every route, the OpenAPI description
   included, and compared in constant time (401 ``unauthorized``);
3. an upload whose ``Content-Length`` exceeds the limit is refused before it is read (413).

Errors are ``{"error": {"code", "message"}}``; messages name no server path and carry no
traceback (unexpected errors are logged on the server and answered with a plain sentence).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Literal, Protocol

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from sa3_studio import __version__
from sa3_studio.engine.api import SAMPLERS, GenerationRequest
from sa3_studio.remote.wire import (
    API_PREFIX,
    API_VERSION,
    CONTENT_NDJSON,
    HEARTBEAT_S,
    RETRYABLE,
    Event,
    audio_to_b64,
    error_body,
    finite_or_none,
    source_id,
)
from sa3_studio.server.config import ServerSettings
from sa3_studio.server.engine import JobSpec, SourceRef
from sa3_studio.server.errors import ApiError, scrub
from sa3_studio.server.store import LruStore
from sa3_studio.server.uploads import decode_upload, too_large

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_JOB_BYTES = 1024 * 1024
"""Largest JSON body of ``POST /v1/jobs`` (audio goes up separately)."""

QUERY_TOKEN_NAMES = frozenset(
    {"token", "access_token", "api_key", "apikey", "key", "auth", "authorization", "bearer"}
)


class Gateway(Protocol):
    """How the ingress reaches the engine replicas."""

    def put(self, audio: np.ndarray) -> Any:
        """Keep a clip where replicas can fetch it; returns what :class:`SourceRef` carries."""
        ...

    def stream(self, model: str, spec: JobSpec) -> AsyncIterator[dict[str, Any]]:
        """Run ``spec`` on a replica of ``model``; yields its events.

        Raises:
            ApiError: ``replica_died`` or ``busy`` (the gateway maps its own failures).
        """
        ...


# -- request body ------------------------------------------------------------------------------


class LoraBody(BaseModel):
    name: str = Field(description="a LoRA name from GET /v1/models")
    strength: float = Field(1.0, description="0 = off, 1 = as trained")


class JobBody(BaseModel):
    """A generation: the engine's request, with audio named by uploaded source id."""

    model: str = Field(description="a model name from GET /v1/models")
    prompt: str | list[str] = ""
    negative_prompt: str | None = None
    duration: float | list[float] | None = Field(
        None, description="seconds; default: the source's length"
    )
    steps: int | None = Field(None, ge=1, le=1000)
    cfg_scale: float | None = None
    apg_scale: float = 1.0
    cfg_interval: tuple[float, float] = (0.0, 1.0)
    cfg_rescale: float = 0.0
    seed: int | None = Field(None, ge=0, lt=2**32)
    batch_size: int = Field(1, ge=1, le=16)
    inpaint_source: str | None = Field(None, description="id from POST /v1/sources")
    inpaint_regions: list[tuple[float, float]] = Field(default_factory=list, max_length=256)
    init_source: str | None = Field(None, description="id from POST /v1/sources")
    init_noise_level: float = 1.0
    sampler: Literal["pingpong", "euler", "dpmpp", "rk4"] | None = None
    decode_range: tuple[float, float] | None = None
    loras: list[LoraBody] = Field(default_factory=list, max_length=16)


assert set(SAMPLERS) == {"pingpong", "euler", "dpmpp", "rk4"}  # keep JobBody in step


# -- the token gate ----------------------------------------------------------------------------


class TokenGate:
    """ASGI middleware: refuse tokens in query strings, require the bearer token, refuse
    oversized uploads by their declared length, all before the app reads a body."""

    def __init__(self, app: FastAPI, settings: ServerSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._check(scope)
        if problem is not None:
            await _send_error(send, problem)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> ApiError | None:
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            names = {k.lower() for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
            if names & QUERY_TOKEN_NAMES:
                return ApiError(
                    400,
                    "token_in_query",
                    "A token was sent in the URL's query string, which the server never "
                    "accepts (URLs end up in logs); send it as 'Authorization: Bearer TOKEN'.",
                )
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if self.settings.token_sha256:
            auth = headers.get("authorization", b"").decode("latin-1")
            scheme, _, presented = auth.partition(" ")
            if scheme.lower() != "bearer" or not self.settings.token_ok(presented.strip()):
                return ApiError(
                    401,
                    "unauthorized",
                    "A valid bearer token is required ('Authorization: Bearer TOKEN').",
                )
        length = headers.get("content-length")
        if scope.get("method") == "POST" and length is not None:
            try:
                size = int(length)
            except ValueError:
                return ApiError(400, "bad_request", "The Content-Length header is not a number.")
            if size > self.settings.limits.max_bytes:
                return too_large(size, self.settings.limits)
            if scope.get("path", "").endswith("/jobs") and size > MAX_JOB_BYTES:
                return ApiError(
                    413, "upload_too_large", "A job description must be under 1 MB of JSON."
                )
        return None


async def _send_error(send: Send, err: ApiError) -> None:
    resp = JSONResponse(error_body(err.code, err.message), status_code=err.status)
    if err.status == 401:
        resp.headers["WWW-Authenticate"] = "Bearer"
    resp.headers["Connection"] = "close"
    await resp({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:  # pragma: no cover - JSONResponse never reads
    return {"type": "http.disconnect"}


# -- the app -----------------------------------------------------------------------------------


def build_api(settings: ServerSettings, gateway: Gateway) -> TokenGate:
    """The ASGI app of the server API: the token gate around a FastAPI app (``.app``)."""
    api = FastAPI(
        title="SA3 Studio server",
        version=__version__,
        description="Stable Audio 3 generation for SA3 Studio clients. Every route needs "
        "'Authorization: Bearer TOKEN'.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    limits = settings.limits
    sources: LruStore[SourceRef] = LruStore(
        settings.source_store_count, settings.source_store_mb * 1024 * 1024
    )
    roots = (*settings.scrub_roots, *(m.path for m in settings.models.values()))

    @api.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
        message = "The request is malformed: " + "; ".join(parts) + "."
        return JSONResponse(error_body("bad_request", scrub(message, roots)), status_code=422)

    @api.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code in (404, 405) else "bad_request"
        text = (
            "There is no such route; see /v1/openapi.json."
            if code == "not_found"
            else ("The request is malformed.")
        )
        return JSONResponse(error_body(code, text), status_code=exc.status_code)

    @api.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error", exc_info=exc)
        return JSONResponse(
            error_body("internal", "The server failed unexpectedly; its log has the details."),
            status_code=500,
        )

    @api.get(f"{API_PREFIX}/models", summary="The models this server offers")
    async def list_models() -> dict[str, Any]:
        return {
            "api_version": API_VERSION,
            "server_version": __version__,
            "limits": {
                "max_upload_bytes": limits.max_bytes,
                "max_seconds": limits.max_seconds,
                "max_channels": limits.max_channels,
                "sample_rates": [limits.min_rate, limits.max_rate],
            },
            "models": [m.info.to_json() for m in settings.models.values()],
        }

    @api.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return api.openapi()

    @api.post(
        f"{API_PREFIX}/sources",
        summary="Upload a source clip (float WAV or FLAC body); returns its content id",
    )
    async def upload(request: Request) -> dict[str, Any]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_bytes:
                raise too_large(size, limits)
            chunks.append(chunk)
        blob = b"".join(chunks)
        audio, rate = await asyncio.to_thread(decode_upload, blob, limits)
        del blob, chunks
        cid = await asyncio.to_thread(source_id, audio, rate)
        ref = SourceRef(cid, rate, int(audio.shape[1]), gateway.put(audio))
        if not sources.put(cid, ref, int(audio.nbytes)):
            raise ApiError(
                413, "upload_too_large", "The clip is larger than the server's source store."
            )
        return _source_json(ref, audio.shape[0])

    @api.get(f"{API_PREFIX}/sources/{{cid}}", summary="Whether the server holds a source clip")
    async def has_source(cid: str) -> dict[str, Any]:
        ref = sources.get(cid)
        if ref is None:
            raise _unknown_source(cid)
        return _source_json(ref, None)

    @api.post(
        f"{API_PREFIX}/jobs",
        summary="Run a generation; streams NDJSON events (queued, heartbeat, started, step, "
        "then result or error). Closing the connection cancels the job.",
    )
    async def submit(body: JobBody) -> StreamingResponse:
        model = settings.models.get(body.model)
        if model is None:
            names = ", ".join(settings.models) or "none"
            raise ApiError(
                404,
                "unknown_model",
                f"The server offers no model named {body.model!r}; it offers: {names}.",
            )
        for lora in body.loras:
            if lora.name not in model.loras:
                offered = ", ".join(model.loras) or "none"
                raise ApiError(
                    404,
                    "unknown_lora",
                    f"The server offers no LoRA named {lora.name!r} for {model.name}; it "
                    f"offers: {offered}.",
                )
            if not math.isfinite(lora.strength):
                raise ApiError(422, "bad_request", f"The strength of {lora.name} is not a number.")
        inpaint = init = None
        if body.inpaint_source is not None:
            inpaint = sources.get(body.inpaint_source)
            if inpaint is None:
                raise _unknown_source(body.inpaint_source)
        if body.init_source is not None:
            init = sources.get(body.init_source)
            if init is None:
                raise _unknown_source(body.init_source)
        spec = JobSpec(
            job_id=secrets.token_hex(8),
            request=_request(body),
            loras=tuple((lo.name, float(lo.strength)) for lo in body.loras),
            inpaint=inpaint,
            init=init,
        )
        return StreamingResponse(
            _events(gateway, model.name, spec),
            media_type=CONTENT_NDJSON,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return TokenGate(api, settings)


def _unknown_source(cid: str) -> ApiError:
    shown = cid[:16] if all(c in "0123456789abcdef" for c in cid) else "given"
    return ApiError(
        409,
        "unknown_source",
        f"The server does not hold the source clip {shown}; upload it with POST /v1/sources, "
        "then send the job again.",
    )


def _source_json(ref: SourceRef, channels: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ref.id,
        "sample_rate": ref.sample_rate,
        "frames": ref.frames,
        "seconds": ref.frames / ref.sample_rate,
    }
    if channels is not None:
        out["channels"] = channels
    return out


def _request(body: JobBody) -> GenerationRequest:
    prompt: str | tuple[str, ...] = (
        body.prompt if isinstance(body.prompt, str) else tuple(body.prompt)
    )
    duration: float | tuple[float, ...] | None = (
        tuple(body.duration) if isinstance(body.duration, list) else body.duration
    )
    return GenerationRequest(
        prompt=prompt,
        negative_prompt=body.negative_prompt,
        duration=duration,
        steps=body.steps,
        cfg_scale=body.cfg_scale,
        apg_scale=body.apg_scale,
        cfg_interval=body.cfg_interval,
        cfg_rescale=body.cfg_rescale,
        seed=body.seed,
        batch_size=body.batch_size,
        inpaint_regions=tuple((float(s), float(e)) for s, e in body.inpaint_regions),
        init_noise_level=body.init_noise_level,
        sampler=body.sampler,
        decode_range=body.decode_range,
    )


async def _events(gateway: Gateway, model: str, spec: JobSpec) -> AsyncIterator[bytes]:
    """The job's NDJSON lines, with a heartbeat at least every :data:`HEARTBEAT_S`."""
    yield Event("queued", {"job": spec.job_id}).to_line()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in gateway.stream(model, spec):
                await queue.put(("event", event))
        except ApiError as exc:
            await queue.put(("error", exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("job %s: the engine call failed", spec.job_id, exc_info=exc)
            await queue.put(("error", ApiError(500, "internal", "The server failed the job.")))
        else:
            await queue.put(("end", None))

    task = asyncio.create_task(pump())
    try:
        while True:
            try:
                kind, item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield Event("heartbeat").to_line()
                continue
            if kind == "error":
                yield _error_line(item.code, item.message)
                return
            if kind == "end":
                yield _error_line("internal", "The engine ended the job without a result.")
                return
            event: dict[str, Any] = item
            etype = event.get("type")
            if etype == "result":
                yield await asyncio.to_thread(_result_line, event)
                return
            if etype == "error":
                yield _error_line(str(event.get("code")), str(event.get("message")))
                return
            data = {k: v for k, v in event.items() if k != "type"}
            yield Event(str(etype), data).to_line()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(asyncio.wait({task}, timeout=5.0))


def _error_line(code: str, message: str) -> bytes:
    return Event(
        "error", {"code": code, "message": message, "retryable": code in RETRYABLE}
    ).to_line()


def _result_line(event: dict[str, Any]) -> bytes:
    audio = np.asarray(event["audio"], dtype=np.float32)
    if audio.ndim == 2:
        audio = audio[None]
    rate = int(event["sample_rate"])
    timings = {
        k: v
        for k, v in ((k, finite_or_none(v)) for k, v in event["timings"].items())
        if v is not None
    }
    return Event(
        "result",
        {
            "format": "wav-float32",
            "audio": [audio_to_b64(take, rate) for take in audio],
            "sample_rate": rate,
            "seed": int(event["seed"]),
            "start_frame": int(event["start_frame"]),
            "timings": timings,
            "model": event["model"],
            "weights_hash": event["weights_hash"],
            "latent_cache_hit": bool(event.get("latent_cache_hit", False)),
        },
    ).to_line()
