"""The server half of the remote engine: SA3 Studio on Ray Serve (the optional ``[server]`` extra).

``sa3-studio serve`` (:mod:`sa3_studio.server.cli`) starts or joins a Ray cluster and deploys
an HTTP ingress (:mod:`sa3_studio.server.ingress`, FastAPI through Serve) and one engine
deployment per model (:mod:`sa3_studio.server.engine`), whose replicas each hold a loaded
pipeline. The wire format is :mod:`sa3_studio.remote.wire`, shared with the client.

Only the modules that deploy import Ray; the settings, the stores and the upload checks do not.
"""

from __future__ import annotations
