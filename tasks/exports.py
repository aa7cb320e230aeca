"""Tasks for Iterable's exports actions."""

__all__: list[str] = []
