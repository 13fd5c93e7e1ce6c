"""The client half of the remote engine: talk to an SA3 Studio server over HTTP.

No Ray, no torch and no Qt here: the editor and the CLI use a server through
:class:`~sa3_studio.remote.pipeline.RemotePipeline` exactly as they use a local pipeline.
The server half lives in :mod:`sa3_studio.server` (the optional ``[server]`` extra).
"""

from __future__ import annotations
