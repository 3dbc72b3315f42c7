"""Alerts, silences and advisories for the dashboard's pages."""

from fastapi import FastAPI

from api.app import Kit


def add_routes(app: FastAPI, kit: Kit) -> None:
    """Add this module's routes to ``app``."""
