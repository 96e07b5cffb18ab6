"""Domain services: async functions taking a principal and typed input, returning models or raising
``DomainError``. They are the only callers of the ledger engine."""
