"""`/import/`: upload a Spotify data export and watch its import (issue 6; DESIGN.md §4).

The page refreshes itself with a `Refresh` response header while an import waits or runs, which works without
JavaScript (the CSP allows no inline script). Uploads larger than `IMPORT_MAX_UPLOAD_BYTES` are refused by
`UploadSizeLimitMiddleware` on their Content-Length, and by `_UploadCap` while streaming when a client sends no
length, so an oversized body is never stored whole.
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.timesince import timesince
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import TemplateView

from earworm.history.import_selectors import (
    REASON_LABELS,
    import_job_list_for_user,
    import_metadata_status,
)
from earworm.history.services.uploads import ImportUploadRejected, import_upload_create, upload_limit_megabytes
from earworm.web.views import PersonalMixin

# Seconds between refreshes of the page while an import waits or runs.
REFRESH_SECONDS = 3


class _UploadCap(FileUploadHandler):
    """Stop storing an upload once the request's files pass the limit (for bodies sent without a length).

    `StopUpload()` makes Django read the rest of the body and discard it, so the browser still gets the page.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.received = 0
        self.too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.IMPORT_MAX_UPLOAD_BYTES:
            self.too_large = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@method_decorator(csrf_exempt, name="dispatch")  # checked in `_post`, after the upload handler is in place
class ImportJobListView(PersonalMixin, TemplateView):
    """The upload form, the user's imports with their progress and counts, and the enrichment status."""

    template_name = "history/import.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        user = self.request.user
        user_id = _user_id(self.request)
        jobs = list(import_job_list_for_user(user_id=user_id))
        active = any(job.status in ("pending", "running") for job in jobs)
        context.update(
            jobs=[_job_view(job) for job in jobs],
            active=active,
            metadata=import_metadata_status(user_id=user_id),
            limit_mb=upload_limit_megabytes(),
            limit_bytes=settings.IMPORT_MAX_UPLOAD_BYTES,
            refresh_seconds=REFRESH_SECONDS,
            time_zone=getattr(user, "time_zone", "UTC") or "UTC",
        )
        return context

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        if response.context_data["active"]:  # type: ignore[attr-defined]
            response["Refresh"] = str(REFRESH_SECONDS)
        return response

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        cap = _UploadCap(request)
        request.upload_handlers.insert(0, cap)
        return self._post(request, cap)

    @method_decorator(csrf_protect)
    def _post(self, request: HttpRequest, cap: _UploadCap) -> HttpResponseBase:
        files = request.FILES.getlist("files")
        if cap.too_large:
            messages.error(request, f"The upload is too large: at most {upload_limit_megabytes()} MB.")
        else:
            try:
                job = import_upload_create(user_id=_user_id(request), files=files)
            except ImportUploadRejected as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"Uploaded {job.original_name}. The import runs in the background.")
        return HttpResponseRedirect(reverse("history:import"))


def _user_id(request: HttpRequest) -> int:
    """The signed-in user's id (every view here requires one)."""
    return int(request.user.pk)  # type: ignore[arg-type]


def _job_view(job: Any) -> dict[str, Any]:
    """What the page shows of one job: progress as a percentage, reasons with their labels."""
    files_done = len(job.files_done)
    if job.status == "done":
        percent = 100
    elif job.files_total:
        percent = int(100 * files_done / job.files_total)
    else:
        percent = 0
    skipped = sorted(((REASON_LABELS.get(k, k), k, v) for k, v in job.skipped.items() if v), key=lambda r: -r[2])
    took = ""
    if job.finished_at:
        seconds = max(int((job.finished_at - job.created_at).total_seconds()), 0)
        took = "under a minute" if seconds < 60 else timesince(job.created_at, job.finished_at)
    return {
        "job": job,
        "took": took,
        "files_done": files_done,
        "current_file": min(files_done + 1, job.files_total),
        "percent": percent,
        "skipped": skipped,
        "skipped_total": sum(row[2] for row in skipped),
    }
