from django import template

from earworm.web.charts import format_duration

register = template.Library()


@register.filter
def duration(ms: int | None) -> str:
    return format_duration(int(ms or 0))


@register.filter
def percent_of(value: int, total: int) -> float:
    """Width of a bar in percent of the longest one; at least 1 so every bar shows."""
    if not total:
        return 0
    return round(max(1.0, 100.0 * value / total), 1)


@register.filter
def num(value: int | None) -> str:
    """1234567 → 1,234,567."""
    return f"{int(value or 0):,}"
