"""The identity of one installation (one database), shared by every process that serves it."""

from tortoise import fields
from tortoise.models import Model


class Installation(Model):
    """One row, written on first start: a random id that names this installation.

    It survives changes of the database URL (a new host, new credentials), so the default Redis channel
    prefix derived from it stays the same, while two installations sharing one Redis never share one.
    """

    id = fields.IntField(primary_key=True)
    installation_id = fields.CharField(max_length=32)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "installation"
