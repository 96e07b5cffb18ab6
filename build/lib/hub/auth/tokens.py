"""Member tokens: ``fhm_<signed payload>``, signed with ``HUB_SECRET_KEY`` by itsdangerous.

The payload names the person (``m``), the brand the token is limited to (``b``; absent for an
all-brands token, which only a verified login code produces) and the expiry (``e``, Unix seconds).
The salt carries a version: tokens of the first format (person only, any brand) no longer verify.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from hub.auth.principal import Principal
from hub.domain import Role

MEMBER_TOKEN_PREFIX = "fhm_"


class MemberTokens:
    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="member-token/v2")
        self.ttl_seconds = ttl_seconds

    def issue(self, member_id: int, brand_id: int | None) -> tuple[str, datetime]:
        """A token for one brand's membership of a person, or (``brand_id=None``) for all of them."""
        expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=self.ttl_seconds)
        payload: dict[str, int] = {"m": member_id, "e": int(expires_at.timestamp())}
        if brand_id is not None:
            payload["b"] = brand_id
        return MEMBER_TOKEN_PREFIX + self._serializer.dumps(payload), expires_at

    def verify(self, token: str) -> Principal | None:
        try:
            data = self._serializer.loads(token[len(MEMBER_TOKEN_PREFIX) :])
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        member_id, brand_id, expiry = data.get("m"), data.get("b"), data.get("e")
        if not isinstance(member_id, int) or not isinstance(expiry, int):
            return None
        if brand_id is not None and not isinstance(brand_id, int):
            return None
        expires_at = datetime.fromtimestamp(expiry, UTC)
        if expires_at <= datetime.now(UTC):
            return None
        return Principal(Role.MEMBER, brand_id=brand_id, member_id=member_id, expires_at=expires_at)
