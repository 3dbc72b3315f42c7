"""The write side of the deployment ledger: events, the store, the hash chain."""
