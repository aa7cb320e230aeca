"""Response schemas for Iterable's messaging actions."""

__all__: list[str] = []
