"""The service's exception tree. Every refusal a user can cause is a `NotifierError` carrying what the HTTP edge
needs to write an RFC 9457 problem (status, title, field-level errors); the core never imports aiohttp.

    NotifierError
    ├── InvalidInput (422)        a value is well-formed but unacceptable: unknown topic/region/group, SSRF URL
    ├── NotFoundError (404)       the addressed resource does not exist
    ├── ConflictError (409)       idempotency key reused with another body, duplicate topic
    ├── Unauthorized (401)        no key, an unknown key, a revoked key
    └── Forbidden (403)           the key's role or topic patterns do not allow the action

Channel adapters raise `channels.errors.DeliveryError`s; the dispatcher turns those into delivery outcomes.
Store refusals (`notifier.store.errors`) are translated into these in exactly one place (`translate_store_error`).
"""

from __future__ import annotations

from dataclasses import dataclass

from notifier.store.errors import Conflict, NotFound, StoreError


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # dotted path into the body or query, e.g. "contacts.sms"
    message: str


class NotifierError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(NotifierError):
    status = 422
    title = "Invalid input"


class NotFoundError(NotifierError):
    status = 404
    title = "Not found"


class ConflictError(NotifierError):
    status = 409
    title = "Conflict"


class Unauthorized(NotifierError):
    status = 401
    title = "Unauthorized"


class Forbidden(NotifierError):
    status = 403
    title = "Forbidden"


def translate_store_error(exc: StoreError) -> NotifierError:
    """The one translation of store refusals into API errors."""
    errors = [FieldError(exc.field, str(exc))] if exc.field else []
    if isinstance(exc, NotFound):
        return InvalidInput(str(exc), errors) if exc.field else NotFoundError(str(exc))
    if isinstance(exc, Conflict):
        return ConflictError(str(exc), errors)
    return NotifierError(str(exc), errors)
