"""Importers: turn external records (JSON Lines; later Nix and CycloneDX) into events."""
