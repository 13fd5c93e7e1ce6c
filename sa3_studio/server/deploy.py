"""The Ray Serve application: one ingress deployment and one engine deployment per model.

* ``engine-NAME``: :class:`~sa3_studio.server.engine.EngineReplica`, one loaded pipeline per
  replica, at most one job per replica at a time (``max_ongoing_requests=1``), so Serve queues
  jobs at the ingress and hands each to a free replica; a bounded queue answers "busy".
* ``ingress``: the HTTP API (:func:`~sa3_studio.server.ingress.build_api`) in front of them,
  reaching the replicas through streaming deployment handles (:class:`RayGateway`).

Ray restarts a replica that dies; a job that was running on it ends with ``replica_died``,
which the client answers by sending the job once more.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from sa3_studio.server.config import ServerSettings
from sa3_studio.server.engine import EngineReplica, JobSpec
from sa3_studio.server.errors import ApiError
from sa3_studio.server.ingress import TokenGate, build_api

log = logging.getLogger(__name__)

APP_NAME = "sa3-studio"
INGRESS_NAME = "ingress"
INGRESS_MAX_ONGOING = 1024


def engine_name(model: str) -> str:
    """The deployment name of a model's engine."""
    return f"engine-{model}"


@dataclass(frozen=True, slots=True)
class Scaling:
    """How many replicas each model gets and what each reserves.

    Attributes:
        replicas: a fixed count (ignored when ``autoscale`` is set).
        autoscale: ``(min, max)`` replicas, scaled by queued jobs.
        gpus: GPUs each replica reserves (0 on CPU; fractions share a GPU).
        cpus: CPUs each replica reserves.
        max_queued: jobs waiting per model before the server answers "busy" (-1: no limit).
    """

    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    gpus: float = 0.0
    cpus: float = 1.0
    max_queued: int = 64

    def options(self) -> dict[str, Any]:
        actor: dict[str, Any] = {"num_cpus": self.cpus}
        if self.gpus > 0:
            actor["num_gpus"] = self.gpus
        out: dict[str, Any] = {
            "ray_actor_options": actor,
            "max_ongoing_requests": 1,
            "max_queued_requests": self.max_queued,
        }
        if self.autoscale is not None:
            lo, hi = self.autoscale
            out["autoscaling_config"] = {
                "min_replicas": lo,
                "max_replicas": hi,
                "initial_replicas": max(lo, 1),
                "target_ongoing_requests": 1,
            }
        else:
            out["num_replicas"] = self.replicas
        return out

    def describe(self) -> str:
        return f"{self.autoscale[0]}-{self.autoscale[1]}" if self.autoscale else str(self.replicas)


def _replica_died(exc: BaseException) -> bool:
    return isinstance(exc, ray.exceptions.RayActorError | ray.exceptions.ActorUnavailableError)


class EngineDeployment(EngineReplica):
    """:class:`EngineReplica` as a Serve replica (named by its Ray actor in events)."""

    def replica_name(self) -> str:
        return str(ray.get_runtime_context().get_actor_name() or "")


class RayGateway:
    """Jobs reach replicas through Serve handles; clips go into Ray's object store."""

    def __init__(self, handles: Mapping[str, DeploymentHandle]) -> None:
        self._handles = {name: h.options(stream=True) for name, h in handles.items()}

    def put(self, audio: np.ndarray) -> Any:
        return ray.put(audio)

    async def stream(self, model: str, spec: JobSpec) -> AsyncIterator[dict[str, Any]]:
        gen = self._handles[model].run.remote(spec)
        try:
            async for event in gen:
                yield event
        except ray.serve.exceptions.BackPressureError:
            raise ApiError(
                503, "busy", "The server's queue for this model is full; try again shortly."
            ) from None
        except BaseException as exc:
            if _replica_died(exc):
                log.warning("job %s: its replica died", spec.job_id)
                raise ApiError(
                    503,
                    "replica_died",
                    "The engine replica running the job stopped; the server restarts it. "
                    "Send the job again.",
                ) from None
            raise
        finally:
            gen.cancel()


class Ingress:
    """The ingress deployment: builds the API around handles to the engine deployments."""

    def __init__(self, settings: ServerSettings, engines: Mapping[str, DeploymentHandle]) -> None:
        self._settings = settings
        self._gateway = RayGateway(engines)

    def __serve_build_asgi_app__(self) -> TokenGate:
        return build_api(self._settings, self._gateway)


def build_application(settings: ServerSettings, scaling: Scaling) -> Any:
    """The Serve application (bind graph) for ``settings``."""
    engine = serve.deployment(EngineDeployment)
    handles = {
        name: engine.options(name=engine_name(name), **scaling.options()).bind(model, settings)
        for name, model in settings.models.items()
    }
    # The ingress takes every request at once (jobs wait in the engine's bounded queue, where
    # their streams send heartbeats), so a client never waits in silence at the proxy.
    ingress = serve.deployment(serve.ingress()(Ingress)).options(
        name=INGRESS_NAME,
        num_replicas=1,
        ray_actor_options={"num_cpus": 0},
        max_ongoing_requests=INGRESS_MAX_ONGOING,
    )
    return ingress.bind(settings, handles)
