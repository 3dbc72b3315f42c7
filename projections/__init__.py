"""Read models derived from the ledger's stream: topology, manifests, generations, audit.

See projections/README.md for the modules and docs/projections.md for how they work.
"""
