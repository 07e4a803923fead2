"""`GET /api/v1/export?format=json|csv`: every play of the caller, streamed (DESIGN.md §4, SECURITY.md AP-3)."""

from typing import Literal

from django.core.cache import cache
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema

from earworm.core.exceptions import ApplicationError
from earworm.stats.exporting import export_csv_chunks, export_json_chunks

router = Router(tags=["export"])

# An export reads the whole history: a few per minute is plenty for a person and bounds the cost of a script.
EXPORTS_PER_MINUTE = 5


class ExportLimited(ApplicationError):
    status_code = 429

    def __init__(self) -> None:
        super().__init__("Too many exports in a minute; try again shortly.", extra={"code": "rate_limited"})


class ExportQuery(Schema):
    format: Literal["json", "csv"] = Field("json", description="json (the /plays shape) or csv (flattened)")


def export_rate_check(*, user_id: int) -> None:
    key = f"export-rate:{user_id}"
    cache.add(key, 0, timeout=60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=60)
        count = 1
    if count > EXPORTS_PER_MINUTE:
        raise ExportLimited()


@router.get("/export", summary="Every play you have, streamed as JSON or CSV", response={200: None})
def export_plays(request: HttpRequest, query: Query[ExportQuery]) -> StreamingHttpResponse:
    user_id = request.auth.pk  # type: ignore[attr-defined]
    export_rate_check(user_id=user_id)
    if query.format == "csv":
        response = StreamingHttpResponse(export_csv_chunks(user_id=user_id), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(export_json_chunks(user_id=user_id), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="earworm-plays.{query.format}"'
    response["Cache-Control"] = "no-store"
    return response
