"""Credentials: API keys and one-time login codes. (Member tokens are signed, not stored.)"""

from tortoise import fields
from tortoise.models import Model

# Role lives in hub.domain (shared with the schema); re-exported here for the models' users.
from hub.domain import Role

__all__ = ["ApiKey", "LoginCode", "LoginThrottle", "Role"]


class ApiKey(Model):
    """A platform, brand-HQ or store key. The secret is shown once, and only its SHA-256 is kept.

    Keys are 256-bit random values, so a fast hash is enough (no password stretching needed). Rotation
    keeps the key (id, prefix, label) and replaces its secret; the previous secret may stay valid for a
    grace period (``previous_secret_hash`` until ``previous_valid_until``).
    """

    id = fields.BigIntField(primary_key=True)
    prefix = fields.CharField(max_length=16, unique=True)
    secret_hash = fields.CharField(max_length=64)
    role = fields.CharEnumField(Role, max_length=16)
    brand: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Brand", related_name="api_keys", null=True, on_delete=fields.RESTRICT
    )
    brand_id: int | None
    store: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "models.Store", related_name="api_keys", null=True, on_delete=fields.RESTRICT
    )
    store_id: int | None
    label = fields.CharField(max_length=100, default="")
    # Permissions beyond the role, comma-separated KeyScope values in sorted order ("" for none).
    scopes = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    # Written at most once a minute per key and process: a hint for finding unused keys, not an audit.
    last_used_at = fields.DatetimeField(null=True)
    previous_secret_hash = fields.CharField(max_length=64, null=True)
    previous_valid_until = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"


class LoginCode(Model):
    """A one-time code that proves a phone number, for a member's all-brands token.

    Only an HMAC of the code is kept (six digits are too few for a plain hash). A code dies at
    ``expires_at``, after ``attempts`` reaches the limit, once used, or when a newer code is sent.
    Codes are written for every requested phone, member or not, so that the answers and the send
    limit do not tell a caller whether a phone belongs to a member.
    """

    id = fields.BigIntField(primary_key=True)
    phone = fields.CharField(max_length=20)
    code_hash = fields.CharField(max_length=64)
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "login_code"
        indexes = (("phone", "created_at"),)


class LoginThrottle(Model):
    """How many codes one phone was sent in its current one-hour window.

    Counted with conditional updates, so concurrent requests cannot exceed the limit.
    """

    id = fields.BigIntField(primary_key=True)
    phone = fields.CharField(max_length=20, unique=True)
    window_start = fields.DatetimeField()
    sent = fields.IntField(default=0)

    class Meta:
        table = "login_throttle"
