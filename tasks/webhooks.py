"""Tasks for Iterable's webhooks actions."""

__all__: list[str] = []
