"""Tasks for Iterable's users actions."""

__all__: list[str] = []
