"""Tasks for Iterable's snippets actions."""

__all__: list[str] = []
