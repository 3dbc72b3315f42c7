"""Maintenance scripts for the repository itself (not part of the ledger)."""
