"""Tasks for Iterable's commerce actions."""

__all__: list[str] = []
