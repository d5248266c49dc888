"""The JSON API for bureaus, operators and providers: /v1 routes, health and metrics (API keys, problem+json)."""
