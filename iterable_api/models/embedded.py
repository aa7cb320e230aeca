"""Response schemas for Iterable's embedded actions."""

__all__: list[str] = []
