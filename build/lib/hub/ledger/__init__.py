"""The ledger posting engine: the only code that writes balances, postings, lots and outbox rows."""
