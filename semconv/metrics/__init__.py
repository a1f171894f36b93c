# generated from semconv/model by semconv/_generate.py, do not edit
"""Metric names and instrument factories of the AEOS semantic conventions, one module per namespace.

Modules: damn, uce.
"""

from __future__ import annotations
