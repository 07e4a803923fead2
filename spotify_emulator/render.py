"""JSON objects in Spotify's shapes (openapi.yml schemas), per mode.

Development mode drops the fields Spotify removed on 2026-02-11/03-09 (FACTS §3.3): album
``available_markets``/``label``/``popularity``; artist ``followers``/``popularity``; track
``available_markets``/``linked_from``/``popularity``; user ``country``/``email``/
``explicit_content``/``followers``/``product``. Extended mode keeps them.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .generator import Album, Artist, Catalog, LocalTrack, Play, Track, User
from .state import iso_ms

MARKETS = ["AR", "AU", "AT", "BE", "BR", "CA", "DE", "ES", "FR", "GB", "JP", "MX", "PL", "SE", "US"]


def _images(kind: str, sid: str) -> list[dict[str, Any]]:
    h = hashlib.sha1(f"{kind}:{sid}".encode()).hexdigest()[:24]  # noqa: S324 - not security
    prefix = "ab67616d" if kind == "album" else "ab676161"
    return [
        {"url": f"https://i.scdn.co/image/{prefix}0000b273{h}", "height": 640, "width": 640},
        {"url": f"https://i.scdn.co/image/{prefix}00001e02{h}", "height": 300, "width": 300},
        {"url": f"https://i.scdn.co/image/{prefix}00004851{h}", "height": 64, "width": 64},
    ]


def _links(api: str, kind: str, sid: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{sid}"},
        "href": f"{api}/{kind}s/{sid}",
        "id": sid,
        "uri": f"spotify:{kind}:{sid}",
    }


def simplified_artist(api: str, a: Artist) -> dict[str, Any]:
    links = _links(api, "artist", a.id)
    return {"external_urls": links["external_urls"], "href": links["href"], "id": a.id, "name": a.name,
            "type": "artist", "uri": links["uri"]}  # fmt: skip


def artist(api: str, a: Artist, mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{a.id}"},
        "followers": {"href": None, "total": a.followers},
        "genres": list(a.genres),
        "href": f"{api}/artists/{a.id}",
        "id": a.id,
        "images": _images("artist", a.id),
        "name": a.name,
        "popularity": a.popularity,
        "type": "artist",
        "uri": f"spotify:artist:{a.id}",
    }
    if mode == "development":
        del out["followers"], out["popularity"]
    return out


def simplified_album(api: str, cat: Catalog, al: Album, mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "album_type": al.album_type,
        "artists": [simplified_artist(api, cat.artist(i)) for i in al.artist_indices],
        "available_markets": MARKETS,
        "external_urls": {"spotify": f"https://open.spotify.com/album/{al.id}"},
        "href": f"{api}/albums/{al.id}",
        "id": al.id,
        "images": _images("album", al.id),
        "name": al.name,
        "release_date": al.release_date,
        "release_date_precision": al.release_date_precision,
        "total_tracks": al.total_tracks,
        "type": "album",
        "uri": f"spotify:album:{al.id}",
    }
    if mode == "development":
        del out["available_markets"]
    return out


def simplified_track(api: str, cat: Catalog, t: Track, mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "artists": [simplified_artist(api, cat.artist(i)) for i in t.artist_indices],
        "available_markets": MARKETS,
        "disc_number": 1,
        "duration_ms": t.duration_ms,
        "explicit": t.explicit,
        "external_urls": {"spotify": f"https://open.spotify.com/track/{t.id}"},
        "href": f"{api}/tracks/{t.id}",
        "id": t.id,
        "is_local": False,
        "name": t.name,
        "preview_url": None,
        "track_number": t.track_number,
        "type": "track",
        "uri": f"spotify:track:{t.id}",
    }
    if mode == "development":
        del out["available_markets"]
    return out


def track(api: str, cat: Catalog, t: Track, mode: str) -> dict[str, Any]:
    out = simplified_track(api, cat, t, mode)
    out["album"] = simplified_album(api, cat, cat.album(t.album_index), mode)
    out["external_ids"] = {"isrc": t.isrc}
    out["popularity"] = t.popularity
    if mode == "development":
        del out["popularity"]
    return dict(sorted(out.items()))


def local_track(lt: LocalTrack) -> dict[str, Any]:
    """A local file as Spotify lists it: ``is_local`` true, ids/hrefs null, a ``spotify:local:`` URI.

    Departs from the spec (id/href/uri of album and artists are null; see README)."""
    return {
        "album": {
            "album_type": None, "artists": [], "available_markets": [], "external_urls": {}, "href": None,
            "id": None, "images": [], "name": lt.album, "release_date": None, "release_date_precision": None,
            "type": "album", "uri": None,
        },
        "artists": [{"external_urls": {}, "href": None, "id": None, "name": lt.artist, "type": "artist", "uri": None}],
        "available_markets": [],
        "disc_number": 0,
        "duration_ms": lt.duration_ms,
        "explicit": False,
        "external_ids": {},
        "external_urls": {},
        "href": None,
        "id": None,
        "is_local": True,
        "name": lt.name,
        "popularity": 0,
        "preview_url": None,
        "track_number": 0,
        "type": "track",
        "uri": lt.uri,
    }  # fmt: skip


def album(api: str, cat: Catalog, al: Album, mode: str) -> dict[str, Any]:
    out = simplified_album(api, cat, al, mode)
    items = [
        simplified_track(api, cat, cat.track(t), mode)
        for t in range(al.first_track, al.first_track + min(al.total_tracks, 50))
    ]
    out.update(
        {
            "copyrights": [{"text": f"© {al.release_date[:4]} {al.label}", "type": "C"},
                           {"text": f"℗ {al.release_date[:4]} {al.label}", "type": "P"}],
            "external_ids": {"upc": al.upc},
            "genres": [],  # "Deprecated. The array is always empty." (spec)
            "label": al.label,
            "popularity": al.popularity,
            "tracks": {
                "href": f"{api}/albums/{al.id}/tracks?offset=0&limit=50",
                "items": items,
                "limit": 50,
                "next": None,
                "offset": 0,
                "previous": None,
                "total": al.total_tracks,
            },
        }
    )  # fmt: skip
    if mode == "development":
        del out["label"], out["popularity"]
    return out


def private_user(api: str, u: User, mode: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "account_id": u.account_id,
        "country": "DE",
        "display_name": u.display_name,
        "email": f"{u.id}@example.invalid",
        "explicit_content": {"filter_enabled": False, "filter_locked": False},
        "external_urls": {"spotify": f"https://open.spotify.com/user/{u.id}"},
        "followers": {"href": None, "total": 3},
        "href": f"{api}/users/{u.id}",
        "id": u.id,
        "images": [{"url": f"https://i.scdn.co/image/ab6775700000ee85{u.account_id}", "height": None,
                    "width": None}],
        "product": "premium",
        "type": "user",
        "uri": f"spotify:user:{u.id}",
    }  # fmt: skip
    if mode == "development":
        for key in ("country", "email", "explicit_content", "followers", "product"):
            del out[key]
    return out


def context(api: str, ctx: tuple[str, str] | None) -> dict[str, Any] | None:
    if ctx is None:
        return None
    kind, sid = ctx
    return {
        "type": kind,
        "href": f"{api}/{kind}s/{sid}",
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{sid}"},
        "uri": f"spotify:{kind}:{sid}",
    }


def play_history(api: str, cat: Catalog, p: Play, mode: str) -> dict[str, Any]:
    if p.local is not None:
        tr = local_track(p.local)
        if mode == "development":
            del tr["available_markets"], tr["popularity"], tr["album"]["available_markets"]
    else:
        assert p.track_index is not None
        tr = track(api, cat, cat.track(p.track_index), mode)
    return {"track": tr, "played_at": iso_ms(p.end_ms), "context": context(api, p.context)}
