"""Franchise Hub: a shared loyalty hub with a double-entry points ledger."""

__version__ = "0.1.0"
