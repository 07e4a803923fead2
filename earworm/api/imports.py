"""`GET /api/v1/imports`: the caller's history imports, newest first (DESIGN.md §4)."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from earworm.history.models import ImportJob

router = Router(tags=["imports"])


class ImportsQuery(Schema):
    limit: int = Field(20, ge=1, le=100)


class ImportOut(Schema):
    id: int
    status: str
    original_name: str
    created_at: datetime
    finished_at: datetime | None
    files_total: int
    # How many of the files are done (imported or rejected).
    files_done: int
    records_total: int
    records_done: int
    plays_added: int
    skipped: dict[str, Any]
    unresolved: int
    errors: list[Any]

    @staticmethod
    def resolve_files_done(job: ImportJob) -> int:
        return len(job.files_done)


class ImportsOut(Schema):
    items: list[ImportOut]


@router.get("/imports", response=ImportsOut, summary="Your imports of Spotify data exports, newest first")
def import_list(request: HttpRequest, response: HttpResponse, query: Query[ImportsQuery]) -> dict:
    response["Cache-Control"] = "no-store"
    jobs = ImportJob.objects.filter(user_id=request.auth.pk).order_by("-created_at")[: query.limit]  # type: ignore[attr-defined]
    return {"items": list(jobs)}
