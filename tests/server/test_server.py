"""The remote engine end to end: ``sa3-studio serve`` on a real local Ray Serve (two replicas
of the tiny 44.1 kHz model) and the client (:class:`RemotePipeline`) talking to it."""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from server_helpers import (
    MAX_UPLOAD_MB,
    LiveServer,
    ReplicaKiller,
    json_lines,
    start_server,
    stop_server,
)

from sa3_studio.engine.api import CancelToken, GenerationRequest
from sa3_studio.engine.pipeline import Pipeline, load_pipeline
from sa3_studio.errors import Cancelled, GenerationError
from sa3_studio.remote.client import RemoteClient, RemoteError
from sa3_studio.remote.pipeline import RemotePipeline
from sa3_studio.remote.wire import encode_wav, source_id

SR = 44100


@pytest.fixture(scope="module")
def local(server: LiveServer) -> Iterator[Pipeline]:
    """The same model loaded in this process, computing with one thread like each replica
    (float32 CPU results depend on how a sum is split between threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_pipeline(server.model_dir, device="cpu", dtype="float32", model_id="tiny44k")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def remote(server: LiveServer) -> RemotePipeline:
    return RemotePipeline.connect(server.url, server.token, "tiny44k", timeout=60)


def _source(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([x, 0.5 * x]).astype(np.float32)  # (2, N)


def _raw(
    server: LiveServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _auth(server: LiveServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def _error(raw: bytes) -> dict[str, Any]:
    err: dict[str, Any] = json.loads(raw)["error"]
    return err


# -- the core flow -----------------------------------------------------------------------------


def test_models_lists_the_served_model(server: LiveServer) -> None:
    models = RemoteClient(server.url, server.token).models()
    assert [m.name for m in models] == ["tiny44k"]
    m = models[0]
    assert (m.sample_rate, m.kind, m.device, m.replicas) == (SR, "post-trained", "cpu", "2")
    assert m.max_seconds > 100
    assert len(m.weights_hash) >= 8
    assert m.loras == ("style",)


def test_generate_streams_progress_and_matches_the_local_engine(
    remote: RemotePipeline, local: Pipeline
) -> None:
    request = GenerationRequest(prompt="warm pad", duration=2.0, seed=1234, steps=5)
    steps: list[tuple[int, int]] = []
    result = remote.generate(request, on_step=lambda d, t: steps.append((d, t)))
    expected = local.generate(request)
    assert steps == [(i, 5) for i in range(1, 6)]
    assert result.seed == 1234
    assert result.audio.shape == expected.audio.shape == (1, 2, 2 * SR)
    assert result.audio.dtype == np.float32
    assert np.array_equal(result.audio, expected.audio)  # bit-identical on CPU float32
    assert result.weights_hash == local.weights_hash
    assert result.model_id == "tiny44k"


def test_inpaint_uploads_once_and_matches_the_local_engine(
    remote: RemotePipeline, local: Pipeline
) -> None:
    audio = _source(seed=11)
    regions = ((0.5, 1.25),)
    encoded = remote.encode(audio, duration=2.0)
    results = []
    for seed in (3, 4, 5):
        request = GenerationRequest(
            prompt="drum fill", duration=2.0, seed=seed, steps=4,
            source_latents=encoded, inpaint_regions=regions,
        )  # fmt: skip
        results.append(remote.generate(request))
    assert remote.uploads == 1  # the source went up once, for three takes
    encodes = [r.timings["source_encode"] > 0 for r in results]
    assert sum(encodes) <= 2  # at most once per replica, then from its latent cache
    for seed, result in zip((3, 4, 5), results):
        expected = local.generate(
            GenerationRequest(
                prompt="drum fill",
                duration=2.0,
                seed=seed,
                steps=4,
                inpaint_audio=audio,
                inpaint_regions=regions,
            )
        )
        assert np.array_equal(result.audio, expected.audio)
    # Outside the region the model keeps the source (as the local engine does).
    assert not np.array_equal(results[0].audio, results[1].audio)


def test_loras_by_server_name_match_the_local_engine(
    server: LiveServer, remote: RemotePipeline, local: Pipeline
) -> None:
    request = GenerationRequest(prompt="styled", duration=1.0, seed=5, steps=3)
    plain = remote.generate(request).audio
    handle = remote.add_lora("/anywhere/on/the/client/style.safetensors", 1.0)
    styled = remote.generate(request).audio
    remote.set_lora_strength(handle, 0.0)
    off = remote.generate(request).audio
    remote.remove_lora(handle)
    lora_file = server.model_dir.parent.parent / "loras" / "style.safetensors"
    local_handle = local.add_lora(lora_file, 1.0)
    try:
        expected = local.generate(request).audio
    finally:
        local.remove_lora(local_handle)
    assert np.array_equal(styled, expected)
    assert not np.array_equal(styled, plain)
    assert np.array_equal(off, plain)  # strength 0 is exactly the base model


def test_variation_sends_the_init_audio_by_id(remote: RemotePipeline, local: Pipeline) -> None:
    audio = _source(seed=12)
    request = GenerationRequest(
        prompt="", duration=2.0, seed=9, steps=3, init_audio=audio, init_noise_level=0.6
    )
    result = remote.generate(request)
    assert np.array_equal(result.audio, local.generate(request).audio)
    assert remote.uploads == 1
    assert RemoteClient(remote.client.url, remote.client._token).has_source(source_id(audio, SR))


def test_cancel_stops_the_job_on_its_replica_within_one_step(
    server: LiveServer, remote: RemotePipeline
) -> None:
    token = CancelToken()

    def on_step(done: int, total: int) -> None:
        if done == 2:
            token.cancel()

    long_job = GenerationRequest(prompt="long", duration=20.0, seed=1, steps=400)
    with pytest.raises(Cancelled):
        remote.generate(long_job, on_step=on_step, cancel=token)
    cancelled_on = remote.last_started["replica"]
    assert cancelled_on
    # Find that replica again (routing is random between the two idle replicas; bounded).
    for _ in range(20):
        remote.generate(GenerationRequest(prompt="short", duration=1.0, seed=2, steps=1))
        if remote.last_started["replica"] == cancelled_on:
            break
    else:
        pytest.fail("never reached the replica that ran the cancelled job")
    stats = remote.last_started
    assert stats["jobs_cancelled"] >= 1
    assert stats["last_cancel_steps"] <= 1  # stopped within one sampler step


def test_many_concurrent_jobs_all_complete(server: LiveServer) -> None:
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            pipe = RemotePipeline.connect(server.url, server.token, "tiny44k", timeout=60)
            results[i] = pipe.generate(
                GenerationRequest(prompt="x", duration=1.0, seed=100 + i, steps=2)
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), name=f"client-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(results) == [0, 1, 2, 3]
    assert {r.seed for r in results.values()} == {100, 101, 102, 103}


# -- security ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/models", "/v1/openapi.json", "/v1/sources/abc"])
def test_missing_token_is_refused(server: LiveServer, path: str) -> None:
    status, raw = _raw(server, "GET", path)
    assert status == 401
    assert _error(raw)["code"] == "unauthorized"


def test_wrong_token_is_refused(server: LiveServer) -> None:
    status, raw = _raw(server, "GET", "/v1/models", headers={"Authorization": "Bearer nope" * 5})
    assert status == 401
    assert _error(raw)["code"] == "unauthorized"
    with pytest.raises(RemoteError) as info:
        RemoteClient(server.url, "wrong-token").models()
    assert info.value.code == "unauthorized"
    assert "token" in str(info.value)


def test_token_in_query_string_is_refused_even_with_a_good_header(server: LiveServer) -> None:
    for name in ("token", "access_token", "api_key"):
        status, raw = _raw(
            server, "GET", f"/v1/models?{name}={server.token}", headers=_auth(server)
        )
        assert status == 400
        assert _error(raw)["code"] == "token_in_query"
    assert server.token not in server.log.read_text(errors="replace")  # never logged


def test_openapi_is_served_behind_the_token(server: LiveServer) -> None:
    status, raw = _raw(server, "GET", "/v1/openapi.json", headers=_auth(server))
    assert status == 200
    spec = json.loads(raw)
    assert "/v1/jobs" in spec["paths"]
    assert "/v1/models" in spec["paths"]
    status, _ = _raw(server, "GET", "/openapi.json", headers=_auth(server))
    assert status == 404  # only the versioned, guarded one exists


def test_token_file_is_owner_only(server: LiveServer) -> None:
    assert server.token_file.stat().st_mode & 0o077 == 0
    assert len(server.token) >= 32


def test_oversized_upload_is_refused_before_it_is_read(server: LiveServer) -> None:
    limit = int(MAX_UPLOAD_MB * 1024 * 1024)
    body = encode_wav(np.zeros((2, limit // 8 + SR), np.float32), SR)  # just over the limit
    assert len(body) > limit
    headers = {**_auth(server), "Content-Type": "audio/wav"}
    status, raw = _raw(server, "POST", "/v1/sources", body=body, headers=headers)
    assert status == 413
    err = _error(raw)
    assert err["code"] == "upload_too_large"
    assert "MB" in err["message"]


def test_upload_with_too_many_channels_is_refused(server: LiveServer) -> None:
    body = encode_wav(np.zeros((3, SR // 10), np.float32), SR)
    headers = {**_auth(server), "Content-Type": "audio/wav"}
    status, raw = _raw(server, "POST", "/v1/sources", body=body, headers=headers)
    assert status == 422
    assert _error(raw)["code"] == "too_many_channels"


def _flac(audio: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio.T, rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def test_flac_uploads_are_checked_by_their_header_before_decoding(server: LiveServer) -> None:
    headers = {**_auth(server), "Content-Type": "audio/flac"}
    # Over the duration limit: 401 s of silence compresses to a few kB.
    long = _flac(np.zeros((1, 401 * 8000), np.float32), 8000)
    assert len(long) < 200_000
    status, raw = _raw(server, "POST", "/v1/sources", body=long, headers=headers)
    assert status == 413
    assert _error(raw)["code"] == "audio_too_long"
    status, raw = _raw(
        server, "POST", "/v1/sources", _flac(np.zeros((1, 400), np.float32), 4000), headers
    )
    assert status == 422
    assert _error(raw)["code"] == "bad_sample_rate"
    ok = _source(seconds=0.5)
    status, raw = _raw(server, "POST", "/v1/sources", body=_flac(ok, SR), headers=headers)
    assert status == 200
    info = json.loads(raw)
    assert (info["channels"], info["frames"], info["sample_rate"]) == (2, ok.shape[1], SR)
    assert len(info["id"]) == 64


def test_garbage_upload_is_a_clear_error(server: LiveServer) -> None:
    headers = {**_auth(server), "Content-Type": "audio/wav"}
    status, raw = _raw(server, "POST", "/v1/sources", body=b"not audio" * 100, headers=headers)
    assert status == 400
    assert _error(raw)["code"] == "bad_audio"


def test_unknown_model_and_lora_names(server: LiveServer, remote: RemotePipeline) -> None:
    with pytest.raises(RemoteError) as info:
        RemotePipeline.connect(server.url, server.token, "no-such-model")
    assert info.value.code == "unknown_model"
    assert "tiny44k" in str(info.value)
    bad_lora = {"model": "tiny44k", "duration": 1.0, "loras": [{"name": "/srv/x.safetensors"}]}
    for body, code in (
        ({"model": "../../etc/passwd", "prompt": "x", "duration": 1.0}, "unknown_model"),
        (bad_lora, "unknown_lora"),
    ):
        headers = {**_auth(server), "Content-Type": "application/json"}
        status, raw = _raw(server, "POST", "/v1/jobs", json.dumps(body).encode(), headers)
        assert status == 404
        err = _error(raw)
        assert err["code"] == code
        assert str(server.model_dir.parent) not in err["message"]
        assert "Traceback" not in err["message"]
    with pytest.raises(GenerationError, match="offers no LoRA named 'drums'"):
        remote.add_lora("/home/me/loras/drums.safetensors", 0.8)


def test_engine_errors_carry_a_message_and_no_server_path(server: LiveServer) -> None:
    body = {"model": "tiny44k", "prompt": "x", "duration": 1.0, "steps": 2, "init_noise_level": 5}
    headers = {**_auth(server), "Content-Type": "application/json"}
    status, raw = _raw(server, "POST", "/v1/jobs", json.dumps(body).encode(), headers)
    assert status == 200
    events = json_lines(raw)
    assert next(e["event"] for e in events) == "queued"
    last = events[-1]
    assert last["event"] == "error"
    assert last["code"] == "generation_failed"
    assert "noise level" in str(last["message"])
    assert str(server.model_dir) not in str(last["message"])


def test_malformed_job_is_422_with_a_message(server: LiveServer) -> None:
    headers = {**_auth(server), "Content-Type": "application/json"}
    status, raw = _raw(server, "POST", "/v1/jobs", b'{"model": "tiny44k", "steps": -3}', headers)
    assert status == 422
    err = _error(raw)
    assert err["code"] == "bad_request"
    assert "steps" in err["message"]


# -- reliability -------------------------------------------------------------------------------


def test_a_replica_killed_mid_job_is_retried_once_and_nothing_hangs(
    server: LiveServer, remote: RemotePipeline
) -> None:
    killed: list[str] = []
    killer = ReplicaKiller(server.ray_address)

    def on_step(done: int, total: int) -> None:
        if done == 2 and not killed:
            killed.append(remote.last_started["replica"])
            killer.kill(killed[0])

    # Long enough that the kill (which takes Ray a few seconds) lands mid-job.
    request = GenerationRequest(prompt="survive", duration=4.0, seed=77, steps=1000)
    try:
        result = remote.generate(request, on_step=on_step)
    finally:
        reported = killer.close()
    assert reported == ["killed"]
    assert killed
    assert killed[0]
    assert remote.attempts == 2  # the job was sent once more after its replica died
    assert result.seed == 77
    assert result.audio.shape == (1, 2, 4 * SR)
    # Ray brings a new replica up in place of the killed one (bounded polling with real jobs).
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while len(seen - {killed[0]}) < 2 and time.monotonic() < deadline:
        remote.generate(GenerationRequest(prompt="x", duration=1.0, seed=1, steps=1))
        seen.add(remote.last_started["replica"])
    assert len(seen - {killed[0]}) == 2


def test_the_client_refuses_an_upload_over_the_servers_limit_without_sending_it(
    remote: RemotePipeline,
) -> None:
    audio = _source(seconds=8.0)  # 2.8 MB as float WAV, over the 2 MB limit
    request = GenerationRequest(
        prompt="x", duration=8.0, seed=1, steps=1, inpaint_audio=audio, inpaint_regions=((1, 2),)
    )
    with pytest.raises(RemoteError, match="accepts at most") as info:
        remote.generate(request)
    assert info.value.code == "upload_too_large"
    assert remote.uploads == 0


def test_the_client_survives_a_server_restart(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("restart")
    proc, live = start_server(root, server.model_dir, ("--replicas", "1"))
    try:
        pipe = RemotePipeline.connect(live.url, live.token, "tiny44k", timeout=60)
        request = GenerationRequest(prompt="again", duration=1.0, seed=3, steps=2)
        first = pipe.generate(request)
    finally:
        stop_server(proc)
    with pytest.raises(RemoteError) as info:  # down: a clear error at once, no hang
        pipe.generate(request)
    assert info.value.code == "unreachable"
    proc, live = start_server(root, server.model_dir, ("--replicas", "1"), port=live.port)
    try:
        again = pipe.generate(request)  # same client, same token file, server back
    finally:
        stop_server(proc)
    assert np.array_equal(first.audio, again.audio)
