"""Response schemas for Iterable's lists actions."""

__all__: list[str] = []
