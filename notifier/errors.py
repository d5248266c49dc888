"""The service's exception tree. Every refusal a user can cause is a `NotifierError` carrying what the HTTP edge
needs to write an RFC 9457 problem (status, title, field-level errors) and what the CLI prints as one line; the
core never imports aiohttp or argparse. The store raises these too, from inside its transactions (a refused write
rolls back whole), so there is nothing to translate between layers.

    NotifierError
    ├── InvalidInput (422)        a value is well-formed but unacceptable: unknown topic/region/group/domain, an
    │                             SSRF URL, a reference to another topic's alert
    ├── NotFoundError (404)       the addressed resource does not exist
    ├── ConflictError (409)       idempotency key reused with another body, duplicate topic, updating an alert
    │                             that was cancelled or superseded
    ├── Unauthorized (401)        no key, an unknown key, a revoked key
    └── Forbidden (403)           the key's role or topic patterns do not allow the action

    channels.errors.DeliveryError (channels import nothing from notifier)
    ├── TransientDeliveryError    retry later (may carry retry_after)
    └── PermanentDeliveryError    this recipient will never take it
    The dispatcher turns these into delivery outcomes; they never reach a user.
"""

from __future__ import annotations

from dataclasses import dataclass


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
