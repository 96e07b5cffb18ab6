"""Input checks shared by resolvers. Each failure names the field and has a stable code."""

from __future__ import annotations

import phonenumbers

from hub.errors import DomainError, ErrorCode, InvalidInput

MAX_TEXT = 200
MAX_KEY = 100
# Largest amount one request may move: keeps every sum far inside a 64-bit column.
MAX_AMOUNT = 2**31 - 1


def text(value: str, field: str, *, max_length: int = MAX_TEXT, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidInput("Must not be empty.", field)
    if len(value) > max_length:
        raise InvalidInput(f"At most {max_length} characters.", field)
    return value


def positive(value: int, field: str) -> int:
    if not 0 < value <= MAX_AMOUNT:
        raise InvalidInput(f"Must be between 1 and {MAX_AMOUNT}.", field)
    return value


def nonzero(value: int, field: str) -> int:
    if value == 0 or abs(value) > MAX_AMOUNT:
        raise InvalidInput(f"Must be non-zero and at most {MAX_AMOUNT} either way.", field)
    return value


def idempotency_key(value: str) -> str:
    return text(value, "idempotencyKey", max_length=MAX_KEY)


def phone(value: str, field: str = "phone", region: str = "CN") -> str:
    """Normalise to E.164 digits without the plus (``8613800138000``)."""
    if len(value) > 32:
        raise DomainError(ErrorCode.INVALID_PHONE, "Not a phone number.", field)
    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise DomainError(ErrorCode.INVALID_PHONE, "Not a phone number.", field) from None
    if not phonenumbers.is_valid_number(parsed):
        raise DomainError(ErrorCode.INVALID_PHONE, "Not a valid phone number.", field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
