"""The typed keys under which the application holds its shared parts (a module of its own so that route modules
can import them without importing the app factory)."""

from __future__ import annotations

from aiohttp import web

from notifier.metrics import Metrics
from notifier.service import Service

SERVICE = web.AppKey("service", Service)
METRICS = web.AppKey("metrics", Metrics)
