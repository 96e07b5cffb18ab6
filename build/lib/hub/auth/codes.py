"""One-time login codes: proof of a phone number, traded for an all-brands member token.

- Six random digits, kept only as an HMAC keyed with ``HUB_SECRET_KEY`` (a plain hash of six digits
  is reversed by trying all of them), compared in constant time.
- A code lives ``ttl`` seconds (5 minutes), allows ``max_attempts`` guesses (5), works once, and dies
  when a newer code is sent for the phone. A phone is sent at most ``sends_per_hour`` codes (5) per
  one-hour window. So a guesser gets at most 25 tries an hour at a one-in-a-million chance each.
- No user enumeration: every valid phone number gets the same answer and the same work (a code row and
  a throttle count); the code is delivered only when the phone belongs to a member (no SMS to
  strangers), and delivery runs after the answer, so its time does not show. A wrong, expired, spent or
  never-sent code, and a phone that is no member, all answer INVALID_CODE.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from hub.auth.senders import CodeSender, masked
from hub.auth.tokens import MemberTokens
from hub.errors import DomainError, ErrorCode
from hub.models import LoginCode, LoginThrottle, Member

log = logging.getLogger("hub.login")
WINDOW = timedelta(hours=1)
INVALID = "The code is wrong or no longer valid. Ask for a new one."


class LoginCodes:
    def __init__(
        self,
        secret_key: str,
        sender: CodeSender,
        tokens: MemberTokens,
        *,
        ttl_seconds: int = 300,
        max_attempts: int = 5,
        sends_per_hour: int = 5,
    ) -> None:
        self._key = secret_key.encode()
        self.sender = sender
        self.tokens = tokens
        self.ttl = timedelta(seconds=ttl_seconds)
        self.max_attempts = max_attempts
        self.sends_per_hour = sends_per_hour
        self._deliveries: set[asyncio.Task[None]] = set()

    def _hash(self, phone: str, code: str) -> str:
        return hmac.new(self._key, f"login:{phone}:{code}".encode(), hashlib.sha256).hexdigest()

    async def request(self, phone: str) -> datetime:
        """Send a code to ``phone`` (normalised) if it belongs to a member; the answer is the same."""
        now = datetime.now(UTC)
        if not await self._count_send(phone, now):
            raise DomainError(
                ErrorCode.RATE_LIMITED, "Too many codes for this phone; try again later.", "phone"
            )
        code = f"{secrets.randbelow(10**6):06d}"
        expires_at = now + self.ttl
        await LoginCode.create(phone=phone, code_hash=self._hash(phone, code), expires_at=expires_at)
        if await Member.exists(phone=phone):
            task = asyncio.create_task(self._deliver(phone, code, expires_at))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return expires_at

    async def verify(self, phone: str, code: str) -> tuple[str, datetime]:
        """An all-brands member token for the right code, used once; INVALID_CODE otherwise."""
        now = datetime.now(UTC)
        if len(code) > 16:
            raise DomainError(ErrorCode.INVALID_CODE, INVALID, "code")
        latest = await LoginCode.filter(phone=phone).order_by("-id").first()
        if latest is None or latest.used_at is not None or latest.expires_at <= now:
            raise DomainError(ErrorCode.INVALID_CODE, INVALID, "code")
        # Count the guess before comparing, atomically, so parallel guesses cannot pass the limit.
        counted = await LoginCode.filter(
            id=latest.id, attempts__lt=self.max_attempts, used_at__isnull=True
        ).update(attempts=F("attempts") + 1)
        right = hmac.compare_digest(latest.code_hash, self._hash(phone, code.strip()))
        if not counted or not right:
            raise DomainError(ErrorCode.INVALID_CODE, INVALID, "code")
        if not await LoginCode.filter(id=latest.id, used_at__isnull=True).update(used_at=now):
            raise DomainError(ErrorCode.INVALID_CODE, INVALID, "code")  # a parallel request used it
        member = await Member.get_or_none(phone=phone)
        if member is None:  # no code is delivered to a non-member; this only happens by a lucky guess
            raise DomainError(ErrorCode.INVALID_CODE, INVALID, "code")
        return self.tokens.issue(member.id, None)

    async def _count_send(self, phone: str, now: datetime) -> bool:
        """One more send in the phone's hourly window, if the limit allows it (atomic on both backends)."""
        window_open = now - WINDOW
        for _ in range(2):
            if await LoginThrottle.filter(
                phone=phone, window_start__gt=window_open, sent__lt=self.sends_per_hour
            ).update(sent=F("sent") + 1):
                return True
            if await LoginThrottle.filter(phone=phone, window_start__lte=window_open).update(
                window_start=now, sent=1
            ):
                return True
            if await LoginThrottle.exists(phone=phone):
                continue  # full, or reset by a parallel request just now: look once more
            try:
                await LoginThrottle.create(phone=phone, window_start=now, sent=1)
                return True
            except IntegrityError:
                continue  # a parallel request made the row: count against it
        return False

    async def _deliver(self, phone: str, code: str, expires_at: datetime) -> None:
        try:
            await self.sender.send(phone, code, expires_at)
        except Exception:  # the caller already has its answer: log and move on
            log.exception("could not send a login code to %s", masked(phone))

    async def drain(self, seconds: float = 5.0) -> None:
        """Wait for the deliveries in flight; cancel those that take longer than ``seconds``."""
        if self._deliveries:
            _, pending = await asyncio.wait(set(self._deliveries), timeout=seconds)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def aclose(self) -> None:
        await self.drain()
        close = getattr(self.sender, "aclose", None)
        if close is not None:
            await close()
