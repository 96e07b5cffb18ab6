from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    PLATFORM = "platform"
    BRAND = "brand"
    STORE = "store"
    MEMBER = "member"


class ApiKey(Model):
    """A platform, brand-HQ or store key. The secret is shown once, and only its SHA-256 is kept.

    Keys are 256-bit random values, so a fast hash is enough (no password stretching needed).
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
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"
