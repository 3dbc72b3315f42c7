"""Importers: turn external records (JSON Lines, Nix, CycloneDX) into events."""
