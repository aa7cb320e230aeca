"""Tasks for Iterable's events actions."""

__all__: list[str] = []
