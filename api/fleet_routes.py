"""The fleet's first screen at scale: aggregate answers counted in the database."""

from fastapi import FastAPI

from api.app import Kit


def add_routes(app: FastAPI, kit: Kit) -> None:
    """Add this module's routes to ``app``."""
