"""The WeChat official account's access token: fetched, cached, refreshed one at a time, invalidated on demand.

Docs:
- stable token: https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken.html
  (rules in https://developers.weixin.qq.com/minigame/dev/api-backend/open-api/access-token/auth.getStableAccessToken.html)
- classic token: https://developers.weixin.qq.com/doc/service/en/Basic_Information/Get_access_token.html

Two ways to get a token, and what they imply:
- `POST cgi-bin/stable_token` with JSON `{"grant_type":"client_credential","appid","secret","force_refresh":false}`
  (preferred). In normal mode the platform returns the *same* token while it is valid and renews it itself within
  the last 5 minutes (old and new both work then), so any number of processes may call it without stepping on
  each other. `force_refresh: true` invalidates the current token: at most 20 a day and 30 s apart (closer calls
  do not refresh). Limits: 10,000 calls/min, 500,000/day.
- `GET cgi-bin/token?grant_type=client_credential&appid=…&secret=…` (fallback). Every call issues a new token
  and the previous one keeps working for 5 minutes only, so two services sharing an account must not both use it.

Policy here:
- One cached token per account, used until `expires_in` minus a margin (5 minutes, or half the lifetime for a
  very short one). Fetches are serialised by one lock with a double check, so N concurrent senders cause one fetch.
- `invalidate(old)` after 40001/40014/42001: if another task has already replaced `old`, its replacement is
  returned at no cost; otherwise one normal fetch. Only when the stable endpoint hands back the very token that
  was just refused is `force_refresh` used — at most `MAX_FORCED_PER_DAY` (10, half the platform's 20, leaving
  the rest to operators) and never twice within 30 s; past that the send is transient and waits.
- Fallback to `cgi-bin/token` when `stable_token` is unavailable: HTTP 404/405/501, or an errcode that is not
  about the credentials, the IP whitelist or load. The switch is sticky for this cache (flip-flopping would
  only double the calls). Credential and whitelist errors are permanent (an operator must fix the console);
  -1, 45009/45011, 5xx and timeouts are transient.

Failures raise `channels.errors` exceptions: a token problem hits every recipient of the batch at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from channels.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)

REFRESH_MARGIN = 300.0  # seconds before expiry at which a cached token is no longer handed out
FORCE_MIN_INTERVAL = 30.0  # the platform ignores forced refreshes closer than this
MAX_FORCED_PER_DAY = 10  # the platform allows 20 a day; keep half for people fixing things by hand
DAY = 86_400.0

# errcodes of a token endpoint that an operator must fix: wrong appid/secret, IP not whitelisted, frozen secret.
CREDENTIAL_ERRORS = frozenset({40001, 40002, 40013, 40125, 40164, 40243, 41002, 41004, 89503})
# errcodes that say "later": system busy, daily/minute quota.
BUSY_ERRORS = frozenset({-1, 45009, 45011})
STABLE_UNAVAILABLE_STATUSES = frozenset({404, 405, 501})


class AccessTokenCache:
    """Hands out a valid access token; one fetch at a time; `invalidate()` after the API refused one."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        endpoint: str,
        app_id: str,
        app_secret: str,
        use_stable_token: bool = True,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._endpoint = endpoint.rstrip("/")
        self._app_id = app_id
        self._secret = app_secret
        self._use_stable = use_stable_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._valid_until = 0.0
        self._forced: deque[float] = deque()  # when forced refreshes were made (last 24 h)
        self.fetches = 0  # token requests made (for tests and metrics)

    @property
    def uses_stable_token(self) -> bool:
        return self._use_stable

    def _cached(self) -> str | None:
        if self._token is not None and self._clock() < self._valid_until:
            return self._token
        return None

    async def get(self) -> str:
        """A token valid for a while yet; fetched when there is none (one fetch however many tasks ask)."""
        token = self._cached()
        if token is not None:
            return token
        async with self._lock:
            token = self._cached()  # another task may have fetched it while this one waited
            if token is not None:
                return token
            return await self._refresh(force=False)

    async def invalidate(self, old: str) -> str:
        """The API refused `old` (40001/40014/42001): a different token to retry with, fetched at most once."""
        async with self._lock:
            current = self._cached()
            if current is not None and current != old:
                return current  # someone else already replaced it
            self._token = None
            token = await self._refresh(force=False)
            if token == old and self._use_stable:
                # The stable endpoint still stands by the token the API refused: only a forced refresh helps.
                token = await self._refresh(force=True)
            return token

    async def _refresh(self, *, force: bool) -> str:
        if force:
            self._check_force_budget()
        token, expires_in = await self._fetch(force=force)
        lifetime = max(1.0, expires_in - min(REFRESH_MARGIN, expires_in / 2))
        self._token, self._valid_until = token, self._clock() + lifetime
        return token

    def _check_force_budget(self) -> None:
        now = self._clock()
        while self._forced and now - self._forced[0] > DAY:
            self._forced.popleft()
        if self._forced and now - self._forced[-1] < FORCE_MIN_INTERVAL:
            wait = FORCE_MIN_INTERVAL - (now - self._forced[-1])
            raise TransientDeliveryError("access token refused; forced refresh too soon", code="40001",
                                         retry_after=wait)
        if len(self._forced) >= MAX_FORCED_PER_DAY:
            raise TransientDeliveryError("access token refused; daily forced refreshes used up", code="40001",
                                         retry_after=3600.0)
        self._forced.append(now)

    async def _fetch(self, *, force: bool) -> tuple[str, float]:
        if self._use_stable:
            try:
                return await self._fetch_stable(force)
            except _StableUnavailable as exc:
                log.warning("WeChat stable_token unavailable (%s); using cgi-bin/token from now on", exc)
                self._use_stable = False
        return await self._fetch_classic()

    async def _fetch_stable(self, force: bool) -> tuple[str, float]:
        body = {"grant_type": "client_credential", "appid": self._app_id, "secret": self._secret,
                "force_refresh": force}
        status, answer = await self._call("POST", f"{self._endpoint}/cgi-bin/stable_token", json=body)
        if status in STABLE_UNAVAILABLE_STATUSES:
            raise _StableUnavailable(f"HTTP {status}")
        code = _errcode(answer)
        if code not in (0, None) and code not in CREDENTIAL_ERRORS and code not in BUSY_ERRORS:
            raise _StableUnavailable(f"errcode {code}")
        return _token_from(status, answer)

    async def _fetch_classic(self) -> tuple[str, float]:
        params = {"grant_type": "client_credential", "appid": self._app_id, "secret": self._secret}
        status, answer = await self._call("GET", f"{self._endpoint}/cgi-bin/token", params=params)
        return _token_from(status, answer)

    async def _call(self, method: str, url: str, **kwargs: Any) -> tuple[int, Mapping[str, Any] | None]:
        self.fetches += 1
        try:
            async with self._http.request(method, url, timeout=self._timeout, raise_for_status=False,
                                          allow_redirects=False, **kwargs) as response:
                text = await response.text()
                status = response.status
        # `from None`, and no str(exc): aiohttp's errors can carry the URL, and the classic URL holds the secret.
        except TimeoutError:
            raise TransientDeliveryError("access token request timed out", code="timeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientDeliveryError(f"access token request failed ({type(exc).__name__})",
                                         code="connection") from None
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = None
        return status, answer if isinstance(answer, Mapping) else None


class _StableUnavailable(Exception):
    """cgi-bin/stable_token cannot serve this account (not an error of the credentials)."""


def _errcode(answer: Mapping[str, Any] | None) -> int | None:
    if answer is None:
        return None
    code = answer.get("errcode")
    return code if isinstance(code, int) else None


def _token_from(status: int, answer: Mapping[str, Any] | None) -> tuple[str, float]:
    """The token of a token endpoint's answer, or the exception its status/errcode calls for."""
    if status >= 500 or status in (408, 429):
        raise TransientDeliveryError(f"access token endpoint answered HTTP {status}", code=f"HTTP {status}")
    if status != 200 or answer is None:
        raise TransientDeliveryError(f"access token endpoint answered HTTP {status} without JSON",
                                     code=f"HTTP {status}")
    code = _errcode(answer)
    if code not in (0, None):
        raise token_error(code)
    token, expires_in = answer.get("access_token"), answer.get("expires_in")
    if not isinstance(token, str) or not token or not isinstance(expires_in, int | float) or expires_in <= 0:
        raise TransientDeliveryError("access token answer without access_token/expires_in", code="bad answer")
    return token, float(expires_in)


def token_error(code: int) -> DeliveryError:
    """The exception for a token endpoint's errcode (the errmsg is not kept: it can echo the caller's IP)."""
    if code in BUSY_ERRORS:
        retry_after = 60.0 if code == 45011 else None
        return TransientDeliveryError(f"access token: errcode {code}", code=str(code), retry_after=retry_after)
    if code in CREDENTIAL_ERRORS:
        return PermanentDeliveryError(f"access token refused: errcode {code} (check appid/secret/IP whitelist)",
                                      code=str(code))
    return PermanentDeliveryError(f"access token: errcode {code}", code=str(code))
