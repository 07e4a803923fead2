"""Validate JSON against ``openapi.yml``, allowing exactly the departures real Spotify shows.

Test-only helper (needs PyYAML and openapi-schema-validator, dev dependencies). The same
``validate`` is applied to the emulator's responses and to the real captures in
``samples/api/``, so the emulator can never be "more valid" than Spotify or less.

Each departure names the evidence; README.md lists them too.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

REPO_ROOT = Path(__file__).resolve().parent.parent

# (schema name, JSON-pointer-ish path inside the resolved schema, what to change, evidence)
DEPARTURES: list[dict[str, str]] = [
    {"where": "PlayHistoryObject.context", "change": "may be null",
     "evidence": "samples/api/zmb3_spotify_player_recently_played.json, "
                 "chekos_spotify-git-scraping_recently_played_2022-08-10.json, "
                 "spotify-web-api-java_..._GetCurrentUsersRecentlyPlayedTracksRequest.json"},
    {"where": "CursorPagingObject.cursors", "change": "may be null (empty page)",
     "evidence": "samples/api/chekos_spotify-git-scraping_recently_played_empty_2026-06-04.json"},
    {"where": "CursorPagingObject.next", "change": "may be null (last or empty page)",
     "evidence": "samples/api/chekos_spotify-git-scraping_recently_played_empty_2026-06-04.json, "
                 "chekos_spotify-git-scraping_recently_played_2022-08-10.json"},
    {"where": "AlbumBase.total_tracks/release_date/release_date_precision",
     "change": "not required (older simplified albums inside tracks lack them)",
     "evidence": "samples/api/zmb3_spotify_find_track.json, zmb3_spotify_player_recently_played.json, "
                 "spotify-web-api-java_..._GetTrackRequest.json"},
    {"where": "SimplifiedAlbumObject.artists", "change": "not required (an older album inside a track lacks it)",
     "evidence": "samples/api/zmb3_spotify_find_track.json"},
    {"where": "ErrorObject.reason", "change": "undeclared field on the quota 429 (allowed: no additionalProperties)",
     "evidence": "FACTS §3.3/§4 (Spotify changelog July 2026; Waynting/GuessSong#27); no capture"},
    {"where": "AlbumBase.available_markets, AlbumObject.label/popularity", "change": "not required",
     "evidence": "development mode removes them (FACTS §3.3, February 2026 changelog); no capture"},
    {"where": "TrackObject/SimplifiedAlbumObject/SimplifiedArtistObject of local files (is_local: true)",
     "change": "id, href, uri, album_type, release_date(_precision) may be null",
     "evidence": "FACTS §3.2 'local files may have a null id (not confirmed here)'; no capture"},
]  # fmt: skip


def spec_path() -> Path:
    return shared_dir() / "spotify" / "openapi.yml"


def shared_dir() -> Path:
    env = os.environ.get("EARWORM_SHARED_DIR")
    return Path(env) if env else (REPO_ROOT / ".." / "shared").resolve()


def samples_dir() -> Path:
    return shared_dir() / "samples"


@functools.lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    with spec_path().open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _resolve(node: Any, spec: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Inline every ``$ref`` (the schemas we use have no cycles; guard anyway)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                return {}
            target: Any = spec
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            return _resolve(target, spec, (*seen, ref))
        return {k: _resolve(v, spec, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, spec, seen) for v in node]
    return node


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]} if "anyOf" not in schema else schema


def _patched_components(strict: bool) -> dict[str, Any]:
    spec = copy.deepcopy(load_spec())
    schemas = spec["components"]["schemas"]
    if not strict:
        # A nullable allOf-wrapper is still checked against its non-nullable target, so point
        # the property at a nullable copy of the target instead.
        for holder, prop, target in (("PlayHistoryObject", "context", "ContextObject"),
                                     ("CursorPagingObject", "cursors", "CursorObject")):  # fmt: skip
            schemas[f"{target}OrNull"] = {**schemas[target], "nullable": True}
            schemas[holder]["properties"][prop] = {"$ref": f"#/components/schemas/{target}OrNull"}
        schemas["CursorPagingObject"]["properties"]["next"]["nullable"] = True
        schemas["AlbumBase"]["required"].remove("available_markets")
        for name in ("total_tracks", "release_date", "release_date_precision"):
            schemas["AlbumBase"]["required"].remove(name)
        schemas["SimplifiedAlbumObject"]["allOf"][1]["required"].remove("artists")
        for name in ("label", "popularity"):
            schemas["AlbumObject"]["required"].remove(name)
    return spec


@functools.lru_cache(maxsize=4)
def _schema(name: str, strict: bool) -> dict[str, Any]:
    spec = _patched_components(strict)
    comps = spec["components"]
    if name in comps["schemas"]:
        return _resolve(comps["schemas"][name], spec)
    node = comps["responses"][name]["content"]["application/json"]["schema"]
    return _resolve(node, spec)


def _relax_local(instance: Any) -> Any:
    """Local-file tracks carry nulls the spec does not allow; check them with nulls removed."""
    if isinstance(instance, dict):
        if instance.get("type") == "track" and instance.get("is_local") is True:
            out = {k: v for k, v in instance.items() if v is not None}
            album = out.get("album")
            if isinstance(album, dict):
                out["album"] = {k: v for k, v in album.items() if v is not None}
                # AlbumBase requires these; a local file has none of them.
                out["album"].setdefault("album_type", "album")
                for key, default in (("id", ""), ("href", ""), ("uri", ""), ("total_tracks", 0),
                                     ("release_date", ""), ("release_date_precision", "year")):  # fmt: skip
                    out["album"].setdefault(key, default)
                out["album"].setdefault("external_urls", {})
                out["album"].setdefault("images", [])
            out["artists"] = [{k: v for k, v in a.items() if v is not None} for a in out.get("artists", [])]
            return out
        return {k: _relax_local(v) for k, v in instance.items()}
    if isinstance(instance, list):
        return [_relax_local(v) for v in instance]
    return instance


def validate(instance: Any, name: str, strict: bool = False) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` matches component ``name``
    (a schema like ``TrackObject`` or a response like ``ManyArtists``/``Unauthorized``)."""
    schema = _schema(name, strict)
    OAS30Validator(schema).validate(instance if strict else _relax_local(instance))


# Which spec component each emulator endpoint answers with (2xx), and the error responses.
RESPONSES = {
    "me": "PrivateUserObject",
    "recently-played": "CursorPagingPlayHistoryObject",
    "track": "TrackObject",
    "artist": "ArtistObject",
    "album": "AlbumObject",
    "tracks": "ManyTracks",
    "artists": "ManyArtists",
    "albums": "ManyAlbums",
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    429: "TooManyRequests",
}
