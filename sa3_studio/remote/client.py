"""HTTP client of the SA3 Studio server (standard library only: ``http.client``).

Every call opens its own connection with a timeout, sends the bearer token in the
``Authorization`` header (never in the URL) and turns every failure into a
:class:`RemoteError` whose message says what happened and what to do. A job's events are read
line by line; the server sends one at least every :data:`~sa3_studio.remote.wire.HEARTBEAT_S`,
so a silent server is detected by the read timeout instead of hanging.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sa3_studio.errors import Sa3Error
from sa3_studio.remote.wire import (
    API_PREFIX,
    CONTENT_NDJSON,
    CONTENT_WAV,
    RETRYABLE,
    Event,
    ServerModel,
)

log = logging.getLogger(__name__)

TOKEN_ENV = "SA3_STUDIO_TOKEN"
"""Environment variable the CLI reads the server token from."""

DEFAULT_TIMEOUT_S = 30.0
"""Connect timeout, and the longest silence tolerated while reading (the server's heartbeat is
half a second)."""


class RemoteError(Sa3Error):
    """The server could not be reached, refused a request, or failed a job.

    Attributes:
        code: the server's error code (see ``wire.ERROR_CODES``), or "unreachable",
            "timeout", "protocol" for failures on the way.
        status: the HTTP status, 0 when there was no response.
    """

    def __init__(self, message: str, *, code: str, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    @property
    def retryable(self) -> bool:
        """The same job may be sent again (a replica died; the connection dropped mid-job)."""
        return self.code in RETRYABLE or self.code == "connection_lost"


def read_token(token_file: str | os.PathLike[str] | None = None) -> str:
    """The server token from ``token_file``, else from ``$SA3_STUDIO_TOKEN`` ("" if neither).

    Raises:
        RemoteError: the file cannot be read or is empty.
    """
    if token_file:
        path = Path(token_file).expanduser()
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RemoteError(
                f"Cannot read the server token from {path} ({exc.strerror or exc}); give the "
                "file that `sa3-studio serve` printed, or set SA3_STUDIO_TOKEN.",
                code="bad_token_file",
            ) from None
        if not token:
            raise RemoteError(f"The token file {path} is empty.", code="bad_token_file")
        return token
    return os.environ.get(TOKEN_ENV, "").strip()


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """A parsed server URL."""

    scheme: str
    host: str
    port: int
    base_path: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.base_path}"

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        """Parse ``http(s)://host[:port][/prefix]``.

        Raises:
            RemoteError: not an http or https URL, or a URL with a query or credentials.
        """
        text = url.strip()
        parts = urllib.parse.urlsplit(text if "://" in text else f"http://{text}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(
                f"{url!r} is not a server address; use http://HOST:PORT or https://HOST:PORT.",
                code="bad_url",
            )
        if parts.query or parts.username or parts.password:
            raise RemoteError(
                f"The server address {url!r} has a query or credentials in it; give only "
                "http(s)://HOST:PORT (the token goes in the token setting, never in the URL).",
                code="bad_url",
            )
        port = parts.port or (443 if parts.scheme == "https" else 8000)
        base = parts.path.rstrip("/")
        if base.endswith(API_PREFIX):
            base = base[: -len(API_PREFIX)]
        return cls(parts.scheme, parts.hostname, port, base)


class _Stream:
    """An open job response: yields events, closes the connection when done or cancelled."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp

    def events(self) -> Iterator[Event]:
        while True:
            try:
                line = self._resp.readline()
            except TimeoutError:
                raise RemoteError(
                    "The server stopped answering in the middle of a job (no word for "
                    f"{self._conn.timeout:.0f} s); check that it still runs.",
                    code="timeout",
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise RemoteError(
                    f"The connection to the server was lost in the middle of a job ({exc}).",
                    code="connection_lost",
                ) from None
            if not line:
                raise RemoteError(
                    "The server closed the connection before the job finished.",
                    code="connection_lost",
                )
            if not line.strip():
                continue
            try:
                yield Event.from_line(line)
            except ValueError:
                raise RemoteError(
                    "The server sent something that is not an SA3 Studio event; is the URL "
                    "an SA3 Studio server?",
                    code="protocol",
                ) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.close()


class RemoteClient:
    """Talks to one SA3 Studio server.

    Args:
        url: ``http(s)://HOST:PORT``.
        token: the bearer token ("" for a server started with ``--insecure-no-token``).
        timeout: connect timeout and longest silence while reading, in seconds.
        ssl_context: for https (default: the system's trust store).
    """

    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address = ServerAddress.parse(url)
        self._token = token.strip()
        self.timeout = float(timeout)
        self._ssl = ssl_context
        self.max_upload_bytes: int | None = None
        """The server's upload limit, known once :meth:`models` has been asked."""

    @property
    def url(self) -> str:
        return self.address.url

    # -- plumbing ------------------------------------------------------------------------------

    def _connect(self) -> http.client.HTTPConnection:
        a = self.address
        if a.scheme == "https":
            return http.client.HTTPSConnection(
                a.host, a.port, timeout=self.timeout, context=self._ssl
            )
        return http.client.HTTPConnection(a.host, a.port, timeout=self.timeout)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if extra:
            headers.update(extra)
        return headers

    def _send(
        self,
        method: str,
        route: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._connect()
        path = self.address.base_path + API_PREFIX + route
        try:
            conn.request(method, path, body=body, headers=self._headers(headers))
            resp = conn.getresponse()
        except (ConnectionRefusedError, socket.gaierror) as exc:
            conn.close()
            raise RemoteError(
                f"Cannot reach the SA3 Studio server at {self.url} ({exc}); check that "
                "`sa3-studio serve` runs there and that the address is right.",
                code="unreachable",
            ) from None
        except TimeoutError:
            conn.close()
            raise RemoteError(
                f"The SA3 Studio server at {self.url} did not answer within "
                f"{self.timeout:.0f} s; check the address and that the server runs.",
                code="timeout",
            ) from None
        except ssl.SSLError as exc:
            conn.close()
            raise RemoteError(
                f"The secure connection to {self.url} failed ({exc.reason or exc}); check the "
                "server's certificate (a self-signed one needs SSL_CERT_FILE).",
                code="tls",
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise RemoteError(
                f"The connection to the SA3 Studio server at {self.url} failed ({exc}).",
                code="connection_lost",
            ) from None
        if resp.status >= 400:
            try:
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                conn.close()
            raise _error_from(resp.status, raw, self.url)
        return conn, resp

    def _json(
        self,
        method: str,
        route: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        conn, resp = self._send(method, route, body, headers)
        try:
            raw = resp.read()
        except TimeoutError:
            raise RemoteError(
                f"The server at {self.url} stopped answering.", code="timeout"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(
                f"The connection to {self.url} was lost ({exc}).", code="connection_lost"
            ) from None
        finally:
            conn.close()
        try:
            return json.loads(raw)
        except ValueError:
            raise RemoteError(
                f"{self.url} answered with something that is not JSON; is it an SA3 Studio server?",
                code="protocol",
            ) from None

    # -- API -----------------------------------------------------------------------------------

    def models(self) -> list[ServerModel]:
        """The models the server offers (``GET /v1/models``)."""
        data = self._json("GET", "/models")
        try:
            limit = data.get("limits", {}).get("max_upload_bytes")
            self.max_upload_bytes = int(limit) if limit is not None else None
            return [ServerModel.from_json(m) for m in data["models"]]
        except (KeyError, TypeError, ValueError):
            raise RemoteError(
                f"{self.url} sent a model list SA3 Studio cannot read; is the server the same "
                "version?",
                code="protocol",
            ) from None

    def has_source(self, source: str) -> bool:
        """Whether the server holds the clip with this id (``GET /v1/sources/ID``)."""
        try:
            self._json("GET", f"/sources/{source}")
        except RemoteError as exc:
            if exc.code == "unknown_source":
                return False
            raise
        return True

    def upload(self, wav: bytes) -> dict[str, Any]:
        """Upload a clip (float WAV bytes); returns the server's description with its ``id``.

        Raises:
            RemoteError: ``upload_too_large`` without sending when the clip is over the
                server's known limit; any refusal of the server.
        """
        limit = self.max_upload_bytes
        if limit is not None and len(wav) > limit:
            raise RemoteError(
                f"The audio to send is {len(wav) / 1e6:.1f} MB; the server at {self.url} accepts "
                f"at most {limit / 1e6:.1f} MB. Choose a shorter context length.",
                code="upload_too_large",
                status=413,
            )
        info = self._json("POST", "/sources", body=wav, headers={"Content-Type": CONTENT_WAV})
        if not isinstance(info, dict) or not isinstance(info.get("id"), str):
            raise RemoteError("The server's answer to an upload has no id.", code="protocol")
        return info

    def submit(self, body: dict[str, Any]) -> _Stream:
        """Start a job (``POST /v1/jobs``); read its events from the returned stream."""
        data = json.dumps(body).encode()
        conn, resp = self._send(
            "POST",
            "/jobs",
            body=data,
            headers={"Content-Type": "application/json", "Accept": CONTENT_NDJSON},
        )
        return _Stream(conn, resp)

    def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI description."""
        data: dict[str, Any] = self._json("GET", "/openapi.json")
        return data


def _error_from(status: int, raw: bytes, url: str) -> RemoteError:
    code, message = "", ""
    try:
        err = json.loads(raw).get("error", {})
        code, message = str(err.get("code", "")), str(err.get("message", ""))
    except (ValueError, AttributeError):
        pass
    if status == 401 and not message:
        message = "The server refused the token."
    if status == 401:
        message += (
            " Set the token `sa3-studio serve` printed (Settings > Engine in the editor, "
            "--token-file or SA3_STUDIO_TOKEN on the command line)."
        )
    if not message:
        message = f"The server at {url} answered HTTP {status}; is it an SA3 Studio server?"
    return RemoteError(message, code=code or f"http_{status}", status=status)
