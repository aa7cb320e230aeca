"""Tasks for Iterable's messaging actions."""

__all__: list[str] = []
