"""The ledger over HTTP: read endpoints for the views, ``POST /api/events`` for agents,
a live event stream and the dashboard, behind bearer tokens with roles."""
