"""Principals and credentials: API keys, member tokens, one-time login codes.

- ``principal``: who is calling (role, brand, store, member, credential expiry).
- ``keys``: ``fh_…`` API keys and the authenticator (bearer credential -> principal, with a 5 s cache).
- ``tokens``: ``fhm_…`` member tokens, limited to one brand or (after a login code) all brands.
- ``codes`` and ``senders``: one-time login codes and where they are sent.
- ``expiry``: open subscriptions end when their credential does.
"""

from hub.auth.keys import API_KEY_PREFIX, Authenticator, hash_secret, new_api_key
from hub.auth.principal import Principal
from hub.auth.tokens import MEMBER_TOKEN_PREFIX, MemberTokens

__all__ = [
    "API_KEY_PREFIX",
    "MEMBER_TOKEN_PREFIX",
    "Authenticator",
    "MemberTokens",
    "Principal",
    "hash_secret",
    "new_api_key",
]
