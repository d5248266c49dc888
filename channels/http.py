"""What the channels that send over the shared aiohttp session share, apart from `channels.base` (which the store
and the command line read, and which therefore does not import the HTTP client)."""

from __future__ import annotations

import aiohttp

# For the requests of a `send_each` batch with a `timeout`: the batch's one timer is their limit, so aiohttp keeps none
# of its own (nor the shared session's default).
UNTIMED = aiohttp.ClientTimeout()
