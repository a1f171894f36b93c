"""Every runtime SQL statement of the read side, by name: one module per area.

Statements are SQLAlchemy Core over the ``storage.schema`` tables and rollup relations,
parameterised (no SQL text built from input). ``rollups`` holds the one statement shape
every rollup reader uses; the other modules hold their area's statements.
"""
