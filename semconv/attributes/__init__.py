# generated from semconv/model by semconv/_generate.py, do not edit
"""Attribute names and enums of the AEOS semantic conventions, one module per namespace.

Modules: aeos, damn, gen_ai, mosaic, uce.
"""

from __future__ import annotations
