"""Composition root: the ``aeos`` CLI and the wiring of ``aeos serve``."""
