"""Response schemas for Iterable's campaigns actions."""

__all__: list[str] = []
