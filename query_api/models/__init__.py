"""Response models of the API, one module per resource (separate from storage rows)."""
