"""Pages: the dashboard, plays, genres, artist/album/track pages, the year in review and settings.

Views parse input, call selectors or one service, and render (STYLE.md §3). Every page for a signed-in
user is personal: `Cache-Control: no-store` (SECURITY.md DJ-12).
"""

from datetime import date
from typing import Any, cast
from zoneinfo import available_timezones

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils.functional import cached_property
from django.views import View
from django.views.generic import TemplateView

from earworm.accounts.models import ApiToken, User
from earworm.api.auth import api_token_create
from earworm.catalog.models import Album, Artist, Track
from earworm.history.selectors import InvalidCursor, play_list_for_user
from earworm.stats import selectors as stats
from earworm.stats.selectors import DateRange, InvalidRange, stats_range_parse, user_today
from earworm.stats.services import stats_time_zone_set, user_data_delete
from earworm.web.charts import bar_chart_svg, heatmap_svg

TOP_N = 10


def _me(request: HttpRequest) -> User:
    """The signed-in user (every view here requires one)."""
    return cast(User, request.user)


class PersonalMixin(LoginRequiredMixin):
    """Signed-in users only; nothing personal is cached by browsers or proxies."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        response["Cache-Control"] = "no-store"
        return response


class RangeMixin(PersonalMixin):
    """Reads `range=` (or the custom `from`/`to` days) in the user's time zone."""

    request: HttpRequest
    default_range = "4w"

    @cached_property
    def date_range(self) -> DateRange:
        user = _me(self.request)
        today = user_today(time_zone=user.time_zone)  # type: ignore[union-attr]
        value = self.request.GET.get("range", self.default_range)
        first, last = self.request.GET.get("from"), self.request.GET.get("to")
        if first and last:
            value = f"{first}..{last}"
        try:
            return stats_range_parse(value=value, today=today)
        except InvalidRange as exc:
            messages.warning(self.request, exc.message)
            return stats_range_parse(value=self.default_range, today=today)

    def range_context(self) -> dict[str, Any]:
        user_id = _me(self.request).pk
        years = stats.stats_years_with_plays(user_id=user_id)
        return {
            "date_range": self.date_range,
            "range_choices": stats.RANGE_CHOICES,
            "range_years": list(reversed(years)),
            "is_custom": ".." in self.date_range.key,
        }


def timeline_chart(points: list[stats.TimelinePoint], bucket: str, title: str) -> Any:
    hours = [p.ms_played / 3_600_000 for p in points]
    return bar_chart_svg(
        starts=[p.start for p in points],
        series=[hours],
        series_names=["Listening"],
        bucket=bucket,
        unit="hours",
        title=title,
    )


class HomeView(RangeMixin, TemplateView):
    """The dashboard for a signed-in user; the introduction for everyone else."""

    template_name = "web/dashboard.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return TemplateView.as_view(template_name="web/home.html")(request)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = _me(self.request)
        user_id, date_range = user.pk, self.date_range
        bucket, points = stats.stats_timeline(user_id=user_id, date_range=date_range)
        first, latest = stats.stats_first_and_last_play(
            user_id=user_id,
            date_range=date_range,
            time_zone=user.time_zone,  # type: ignore[union-attr]
        )
        top = {
            "artists": stats.stats_top_artists(user_id=user_id, date_range=date_range, limit=TOP_N),
            "tracks": stats.stats_top_tracks(user_id=user_id, date_range=date_range, limit=TOP_N),
            "albums": stats.stats_top_albums(user_id=user_id, date_range=date_range, limit=TOP_N),
            "genres": stats.stats_top_genres(user_id=user_id, date_range=date_range, limit=TOP_N),
        }
        return {
            **super().get_context_data(**kwargs),
            **self.range_context(),
            "totals": stats.stats_totals(user_id=user_id, date_range=date_range),
            "timeline": timeline_chart(points, bucket, f"Listening time per {bucket}, {date_range.label}"),
            "bucket": bucket,
            "heatmap": heatmap_svg(
                grid=stats.stats_heatmap(user_id=user_id, date_range=date_range),
                title=f"Plays by weekday and hour, {date_range.label}",
            ),
            "top": top,
            "first_play": first,
            "latest_play": latest,
            "sync_template": _optional_template("history/sync_status.html"),
        }


def _optional_template(name: str) -> str | None:
    """A template another app provides, if it is there (the sync status block lives in earworm.history)."""
    try:
        get_template(name)
    except TemplateDoesNotExist:
        return None
    return name


class PlayListView(PersonalMixin, TemplateView):
    template_name = "web/play_list.html"
    page_size = 50

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        cursor = self.request.GET.get("cursor") or None
        try:
            page = play_list_for_user(user_id=_me(self.request).pk, limit=self.page_size, cursor=cursor)
        except InvalidCursor as exc:
            raise Http404(exc.message) from exc
        return {**super().get_context_data(**kwargs), "page": page, "is_first_page": cursor is None}


class GenreListView(RangeMixin, TemplateView):
    template_name = "web/genre_list.html"
    default_range = "12m"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user_id, date_range = _me(self.request).pk, self.date_range
        genres = stats.stats_top_genres(user_id=user_id, date_range=date_range, limit=30)
        artists = stats.stats_genre_artists(user_id=user_id, date_range=date_range, genre_ids=[g["id"] for g in genres])
        top_ids = [g["id"] for g in genres[:6]]
        timeline = stats.stats_genre_timeline(user_id=user_id, date_range=date_range, genre_ids=top_ids)
        chart = None
        if timeline:
            starts = list(timeline)
            bucket = "year" if len(starts) > 1 and starts[1].month == starts[0].month == 1 else "month"
            chart = bar_chart_svg(
                starts=starts,
                series=[[timeline[s].get(g, 0) for s in starts] for g in top_ids],
                series_names=[g["name"] for g in genres[:6]],
                bucket=bucket,
                unit="plays",
                title=f"Plays of your top genres per {bucket}, {date_range.label}",
            )
        totals = stats.stats_totals(user_id=user_id, date_range=date_range)
        return {
            **super().get_context_data(**kwargs),
            **self.range_context(),
            "genres": [{**g, "artists": artists.get(g["id"], [])} for g in genres],
            "legend": genres[:6],
            "chart": chart,
            "without_genre": stats.stats_genre_coverage(user_id=user_id, date_range=date_range),
            "totals": totals,
        }


class EntityView(RangeMixin, TemplateView):
    """Shared by the artist, album and track pages. 404 unless the user has played it (shared catalog)."""

    default_range = "all"
    model: type[Artist] | type[Album] | type[Track]
    kind = ""

    def scope(self, obj: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        obj = self.model.objects.filter(pk=kwargs["pk"]).first()
        if obj is None:
            raise Http404
        user = _me(self.request)
        sql, params = self.scope(obj)
        everything = DateRange("all", None, None, "All time")
        lifetime = stats.stats_entity_summary(
            user_id=user.pk, date_range=everything, track_ids_sql=sql, scope_params=params
        )
        if not lifetime["plays"]:
            raise Http404  # never reveal what only other users have played
        date_range = self.date_range
        summary = stats.stats_entity_summary(
            user_id=user.pk, date_range=date_range, track_ids_sql=sql, scope_params=params
        )
        bucket, points = stats.stats_timeline(
            user_id=user.pk, date_range=date_range, track_ids_sql=sql, scope_params=params
        )
        track_ids = self.track_ids(obj)
        first, latest = stats.stats_first_and_last_play(
            user_id=user.pk,
            date_range=date_range,
            time_zone=user.time_zone,
            track_ids=track_ids,  # type: ignore[union-attr]
        )
        return {
            **super().get_context_data(**kwargs),
            **self.range_context(),
            "object": obj,
            "kind": self.kind,
            "summary": summary,
            "lifetime": lifetime,
            "timeline": timeline_chart(points, bucket, f"Listening time per {bucket}, {date_range.label}"),
            "first_play": first,
            "latest_play": latest,
            "top_tracks": self.top_tracks(obj, date_range),
        }

    def track_ids(self, obj: Any) -> list[int]:
        raise NotImplementedError

    def top_tracks(self, obj: Any, date_range: DateRange) -> list[dict[str, Any]]:
        return []


class ArtistDetailView(EntityView):
    template_name = "web/entity_detail.html"
    model = Artist
    kind = "artist"

    def scope(self, obj: Any) -> tuple[str, list[Any]]:
        return stats.artist_tracks_sql(), [obj.pk]

    def track_ids(self, obj: Any) -> list[int]:
        return list(obj.tracks.values_list("pk", flat=True))

    def top_tracks(self, obj: Any, date_range: DateRange) -> list[dict[str, Any]]:
        return stats.stats_top_tracks(user_id=_me(self.request).pk, date_range=date_range, limit=15, artist_id=obj.pk)


class AlbumDetailView(EntityView):
    template_name = "web/entity_detail.html"
    model = Album
    kind = "album"

    def scope(self, obj: Any) -> tuple[str, list[Any]]:
        return stats.album_tracks_sql(), [obj.pk]

    def track_ids(self, obj: Any) -> list[int]:
        return list(obj.tracks.values_list("pk", flat=True))

    def top_tracks(self, obj: Any, date_range: DateRange) -> list[dict[str, Any]]:
        return stats.stats_top_tracks(user_id=_me(self.request).pk, date_range=date_range, limit=30, album_id=obj.pk)


class TrackDetailView(EntityView):
    template_name = "web/entity_detail.html"
    model = Track
    kind = "track"

    def scope(self, obj: Any) -> tuple[str, list[Any]]:
        return stats.track_only_sql(), [obj.pk]

    def track_ids(self, obj: Any) -> list[int]:
        return [obj.pk]


class YearInReviewView(PersonalMixin, TemplateView):
    """'Wrapped' for any year with plays."""

    template_name = "web/year_review.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        years = stats.stats_years_with_plays(user_id=_me(request).pk)
        if "year" not in kwargs:
            if not years:
                messages.info(request, "No plays yet: your year in review appears once Earworm has some.")
                return HttpResponseRedirect(reverse("web:home"))
            return HttpResponseRedirect(reverse("web:year-review", kwargs={"year": years[-1]}))
        if kwargs["year"] not in years:
            raise Http404
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user, year = _me(self.request), kwargs["year"]
        date_range = DateRange(str(year), date(year, 1, 1), date(year, 12, 31), str(year))
        user_id = user.pk
        _, points = stats.stats_timeline(user_id=user_id, date_range=date_range, bucket="month")
        years = stats.stats_years_with_plays(user_id=user_id)
        first, latest = stats.stats_first_and_last_play(
            user_id=user_id,
            date_range=date_range,
            time_zone=user.time_zone,  # type: ignore[union-attr]
        )
        return {
            **super().get_context_data(**kwargs),
            "year": year,
            "years": years,
            "previous_year": max((y for y in years if y < year), default=None),
            "next_year": min((y for y in years if y > year), default=None),
            "totals": stats.stats_totals(user_id=user_id, date_range=date_range),
            "top_artists": stats.stats_top_artists(user_id=user_id, date_range=date_range, limit=5),
            "top_tracks": stats.stats_top_tracks(user_id=user_id, date_range=date_range, limit=5),
            "top_albums": stats.stats_top_albums(user_id=user_id, date_range=date_range, limit=5),
            "top_genres": stats.stats_top_genres(user_id=user_id, date_range=date_range, limit=5),
            "busiest_day": stats.stats_busiest_day(user_id=user_id, date_range=date_range),
            "timeline": timeline_chart(points, "month", f"Listening time per month in {year}"),
            "heatmap": heatmap_svg(
                grid=stats.stats_heatmap(user_id=user_id, date_range=date_range),
                title=f"Plays by weekday and hour in {year}",
            ),
            "first_play": first,
            "latest_play": latest,
        }


TIME_ZONES = sorted(available_timezones() - {"localtime", "Factory"})


class SettingsView(PersonalMixin, TemplateView):
    template_name = "web/settings.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        user = _me(self.request)
        return {
            **super().get_context_data(**kwargs),
            "time_zones": TIME_ZONES,
            "tokens": ApiToken.objects.filter(user=user).order_by("-created_at"),
            "new_token": self.request.session.pop("new_api_token", None),
        }


class TimeZoneUpdateView(PersonalMixin, View):
    """Store the time zone; the user's statistics are then rebuilt in it (local days and hours change)."""

    def post(self, request: HttpRequest) -> HttpResponse:
        name = request.POST.get("time_zone", "")
        automatic = request.POST.get("automatic") == "1"
        request.session["time_zone_checked"] = True
        if name not in TIME_ZONES:
            if automatic:
                return HttpResponse(status=204)
            messages.error(request, "Choose a time zone from the list.")
            return HttpResponseRedirect(reverse("web:settings"))
        if automatic and _me(request).time_zone != "UTC":
            return HttpResponse(status=204)  # the browser only suggests a zone until one is set
        changed = stats_time_zone_set(user_id=_me(request).pk, time_zone=name)
        if automatic:
            return HttpResponse(status=204)
        if changed:
            messages.success(request, f"Time zone set to {name}. Your statistics now use it.")
        return HttpResponseRedirect(reverse("web:settings"))


class ApiTokenCreateView(PersonalMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        name = (request.POST.get("name") or "").strip()[:100] or "API token"
        _, raw = api_token_create(user=_me(request), name=name)
        # Shown once, on the next page only (SECURITY.md AP-4); the session is server-side.
        request.session["new_api_token"] = {"name": name, "value": raw}
        return HttpResponseRedirect(reverse("web:settings") + "#tokens")


class ApiTokenRevokeView(PersonalMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        deleted, _ = ApiToken.objects.filter(user=_me(request), pk=pk).delete()
        if not deleted:
            raise Http404
        messages.success(request, "Token revoked: scripts using it now get 401.")
        return HttpResponseRedirect(reverse("web:settings") + "#tokens")


class AccountDeleteView(PersonalMixin, View):
    """Delete the account, its plays, tokens and statistics, after the user types DELETE; then log out."""

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.POST.get("confirm", "").strip() != "DELETE":
            messages.error(request, "Type DELETE in capitals to confirm. Nothing was deleted.")
            return HttpResponseRedirect(reverse("web:settings") + "#delete")
        user_id = _me(request).pk
        logout(request)
        user_data_delete(user_id=user_id)
        messages.success(request, "Your account and all your plays are deleted.")
        return HttpResponseRedirect("/")
