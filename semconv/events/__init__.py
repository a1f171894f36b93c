# generated from semconv/model by semconv/_generate.py, do not edit
"""Event names of the AEOS semantic conventions, one module per namespace.

Modules: damn.
"""

from __future__ import annotations
