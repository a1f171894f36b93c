"""AEOS semantic conventions: the MOSAIC, DAMN, UCE and ``aeos`` names, plus the mapped ``gen_ai``.

The model is YAML (``semconv/model/<namespace>/``); the constants are generated from it
(``python -m semconv._generate``; ``--check`` verifies they are current):

- ``semconv.attributes.<namespace>``: attribute names and ``StrEnum``s of enum values;
- ``semconv.metrics.<namespace>``: metric names and ``create_<metric>(meter)`` factories;
- ``semconv.events.<namespace>``: event names (``damn.agent.heartbeat``).

Hand-written:

- ``semconv.helpers``: resource attributes, spans and heartbeats for agent authors;
- ``semconv.normalize``: what the receiver uses to read them (aliases, coercion,
  subsystem, heartbeats).

Everything here imports only the standard library (``opentelemetry`` is imported inside
the helper functions that need it; PyYAML only by the generator). This module imports
nothing, so the generator still runs when the generated modules are missing or broken.
"""

from __future__ import annotations
