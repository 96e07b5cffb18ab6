"""Personal data (PIPL): who sees a member's phone number in full, and what everyone else sees.

A phone is personal data. It is shown in full to the member it belongs to (a member reaches only its
own memberships) and to API keys that carry the ``personal_data`` scope (``KeyScope``); every other
caller sees it masked: ``138****0000`` for a mainland number, ``+44 791****3456`` for another country.
Full numbers are E.164 with the plus (``+8613800130000``); the database keeps the digits only.

Every field or list that shows a phone goes through ``phone_for``; code that needs the rule alone
(e.g. whether an export may include personal data) asks ``sees_personal_data``.

An erased person (docs/records.md) keeps a placeholder in place of the phone (``ERASED_MARK`` and
random letters, which no phone number can equal); it is shown to everyone as ``ERASED``.
"""

from __future__ import annotations

import re
import secrets

import phonenumbers

from hub.auth.principal import Principal
from hub.domain import KeyScope, Role

MAINLAND = 86
_MAINLAND_MOBILE = re.compile(r"861\d{10}")
ERASED_MARK = "x"
ERASED = "ERASED"


def erased_placeholder() -> str:
    """What an erased person's phone column holds: unique, random, never a phone number."""
    return ERASED_MARK + secrets.token_hex(8)


def is_erased(digits: str) -> bool:
    return digits.startswith(ERASED_MARK)


def sees_personal_data(principal: Principal | None) -> bool:
    """A member (its own data) or an API key with the personal-data permission."""
    if principal is None:
        return False
    return principal.role is Role.MEMBER or KeyScope.PERSONAL_DATA in principal.scopes


def e164(digits: str) -> str:
    """The stored digits (``8613800130000``) as E.164 (``+8613800130000``)."""
    return "+" + digits


def mask_phone(digits: str) -> str:
    """The stored digits with the middle of the national number hidden: ``138****0000``."""
    if _MAINLAND_MOBILE.fullmatch(digits):  # the common case, without parsing
        return f"{digits[2:5]}****{digits[-4:]}"
    try:
        parsed = phonenumbers.parse(e164(digits))
        country, national = parsed.country_code, phonenumbers.national_significant_number(parsed)
    except phonenumbers.NumberParseException:
        country, national = 0, digits
    if len(national) >= 8:
        masked = f"{national[:3]}****{national[-4:]}"
    else:
        masked = "****" + national[-2:]
    return masked if country in (MAINLAND, 0) else f"+{country} {masked}"


def phone_for(principal: Principal | None, digits: str) -> str:
    """The phone as ``principal`` may see it: in full (E.164) or masked; ``ERASED`` after erasure."""
    if is_erased(digits):
        return ERASED
    return e164(digits) if sees_personal_data(principal) else mask_phone(digits)
