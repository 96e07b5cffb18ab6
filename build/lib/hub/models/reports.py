"""Report rollups (docs/reports.md): what the ledger moved, summed per brand-local day.

The posting engine appends one ``ReportDelta`` row per group of each batch it writes (insert only: no
row is shared by two writers, so reports add no lock to the posting path). The worker's rollup job
folds committed deltas into ``ReportDay`` rows, deleting them in the same transaction, so each delta
counts exactly once; a report reads the days and the deltas not yet folded.

A row's group: brand, store (0: none), transaction kind, then either an account side (asset, asset
code, account kind: what the postings on such accounts added up to) or, with all three empty, the
transactions themselves (how many, and the purchases among them with their amount).
"""

from tortoise import fields
from tortoise.models import Model


class ReportDelta(Model):
    """What one ledger batch moved in one group, until the worker folds it into ``ReportDay``."""

    id = fields.BigIntField(primary_key=True)
    brand_id = fields.BigIntField()
    store_id = fields.BigIntField(default=0)  # 0: the transaction named no store
    kind = fields.CharField(max_length=24)  # the transaction kind, as the ledger stores it
    asset = fields.CharField(max_length=16, default="")
    asset_code = fields.CharField(max_length=32, default="")
    account_kind = fields.CharField(max_length=16, default="")
    credit = fields.BigIntField(default=0)  # the sum of positive postings
    debit = fields.BigIntField(default=0)  # the sum of negative postings, as a positive number
    count = fields.BigIntField(default=0)  # postings, or transactions on the transactions' row
    purchases = fields.BigIntField(default=0)
    sales_fen = fields.BigIntField(default=0)
    at = fields.DatetimeField()  # the batch's time (the transactions' created_at)

    class Meta:
        table = "report_delta"


class ReportDay(Model):
    """The sum of every folded delta of one group and brand-local day."""

    id = fields.BigIntField(primary_key=True)
    brand_id = fields.BigIntField()
    day = fields.DateField()  # in the brand's time zone
    store_id = fields.BigIntField(default=0)
    kind = fields.CharField(max_length=24)
    asset = fields.CharField(max_length=16, default="")
    asset_code = fields.CharField(max_length=32, default="")
    account_kind = fields.CharField(max_length=16, default="")
    credit = fields.BigIntField(default=0)
    debit = fields.BigIntField(default=0)
    count = fields.BigIntField(default=0)
    purchases = fields.BigIntField(default=0)
    sales_fen = fields.BigIntField(default=0)

    class Meta:
        table = "report_day"
        unique_together = (("brand_id", "day", "store_id", "kind", "asset", "asset_code", "account_kind"),)
