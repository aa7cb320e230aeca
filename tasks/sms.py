"""Tasks for Iterable's sms actions."""

__all__: list[str] = []
