"""Read models derived from the ledger's stream (topology, manifests, generations, audit).

Not built yet: see projections/README.md.
"""
