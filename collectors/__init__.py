"""Followers of the ledger's stream that push outward (Riemann, Slack, Kafka).

Not built yet: see collectors/README.md.
"""
