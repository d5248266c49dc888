"""The HTTP edge: the JSON API under /v1, health, metrics and the API's own description."""

from notifier.web.app import create_app, run_server
from notifier.web.state import METRICS, SERVICE

__all__ = ["METRICS", "SERVICE", "create_app", "run_server"]
