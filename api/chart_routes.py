"""The data behind the dashboard's pictures over time."""

from fastapi import FastAPI

from api.app import Kit


def add_routes(app: FastAPI, kit: Kit) -> None:
    """Add this module's routes to ``app``."""
