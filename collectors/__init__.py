"""Followers of the ledger's stream that push outward: Riemann (events and gauges) and
Slack (grouped alerts); Kafka is not built yet. The modules: collectors/README.md.
"""
