"""The control API under ``/_emulator/`` (JSON). Documented in README.md."""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Any

from . import export
from .generator import Play
from .http import Request, Response, json_response
from .state import FAULT_KINDS, Fault, State, iso_ms, parse_time

FAULT_ENDPOINTS = (
    "*", "token", "me", "recently-played", "track", "artist", "album", "tracks", "artists", "albums",
)  # fmt: skip


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def play_json(state: State, p: Play) -> dict[str, Any]:
    cat = state.world.catalog
    out: dict[str, Any] = {
        "kind": p.kind,
        "track_id": None,
        "uri": None,
        "name": None,
        "artists": [],
        "played_at": iso_ms(p.end_ms),
        "played_at_ms": p.end_ms,
        "started_at_ms": p.start_ms,
        "ms_played": p.ms_played,
        "source": p.source,
        "visible_in_api": p.visible_in_api,
        "context_uri": f"spotify:{p.context[0]}:{p.context[1]}" if p.context else None,
    }
    if p.kind == "track" and p.track_index is not None:
        t = cat.track(p.track_index)
        out.update(track_id=t.id, uri=f"spotify:track:{t.id}", name=t.name,
                   artists=[cat.artist(i).id for i in t.artist_indices])  # fmt: skip
    elif p.local is not None:
        out.update(uri=p.local.uri, name=p.local.name)
    elif p.episode is not None:
        out.update(uri=f"spotify:episode:{p.episode[2]}", name=p.episode[1])
    if p.source == "export":
        out["export_ts"] = export.ts_seconds(p.end_ms)
        out["duplicate_rows"] = p.duplicate_rows
    return out


def handle(state: State, req: Request) -> Response:
    path = req.path.rstrip("/")
    try:
        return _route(state, req, path)
    except (ValueError, KeyError, TypeError) as exc:
        return _error(400, f"{type(exc).__name__}: {exc}")


def _users_json(state: State) -> list[dict[str, Any]]:
    return [
        {"id": u.id, "account_id": u.account_id, "display_name": u.display_name,
         "allow_listed": state.allow_list.get(u.id, False)}
        for u in state.world.users
    ]  # fmt: skip


def _route(state: State, req: Request, path: str) -> Response:
    m, body = req.method, (req.json() if req.method in ("POST", "PATCH", "PUT") else {})
    if path in ("/_emulator", "/_emulator/info") and m == "GET":
        return json_response(200, {
            "seed": state.seed, "now_ms": state.now_ms(), "now": iso_ms(state.now_ms()),
            "clients": [c.client_id for c in state.clients.values()], "users": _users_json(state),
            "settings": dataclasses.asdict(state.settings), "api_history_from_ms": state.api_from_ms,
        })  # fmt: skip
    if path == "/_emulator/reset" and m == "POST":
        state.reset()
        return json_response(200, {"ok": True, "now_ms": state.now_ms()})
    if path == "/_emulator/clock":
        if m == "POST":
            with state.lock:
                if "advance_seconds" in body:
                    state.clock.advance(float(body["advance_seconds"]))
                elif "set" in body:
                    state.clock.set(parse_time(body["set"]))
                else:
                    raise ValueError("give advance_seconds or set")
        now = state.now_ms()
        return json_response(200, {"now_ms": now, "now": iso_ms(now), "frozen": state.clock.frozen})
    if path == "/_emulator/users" and m == "GET":
        return json_response(200, {"users": _users_json(state)})
    um = re.match(r"^/_emulator/users/([^/]+)(/.*)?$", path)
    if um:
        return _user_route(state, req, um.group(1), um.group(2) or "", body)
    if path == "/_emulator/faults":
        if m == "POST":
            return json_response(200, _add_fault(state, body).to_json())
        if m == "DELETE":
            with state.lock:
                state.faults.clear()
        return json_response(200, {"faults": [f.to_json() for f in state.faults]})
    if path == "/_emulator/counters":
        if m == "DELETE":
            with state.lock:
                state.counters = type(state.counters)()
        with state.lock:
            return json_response(200, state.counters.to_json())
    if path == "/_emulator/config":
        if m in ("POST", "PATCH", "PUT"):
            with state.lock:
                allow = body.pop("allow_list", None) or {}
                for uid, allowed in allow.items():
                    if state.world.user(uid) is None:
                        raise ValueError(f"unknown user {uid}")
                    state.allow_list[uid] = bool(allowed)
                state.materialize()  # plays so far follow the old settings (e.g. auto_listen)
                state.settings.update(body)
        return json_response(200, {"settings": dataclasses.asdict(state.settings), "users": _users_json(state)})
    return _error(404, f"no control endpoint {m} {path}")


def _add_fault(state: State, body: dict[str, Any]) -> Fault:
    kind = str(body["kind"])
    endpoint = str(body.get("endpoint", "*"))
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {FAULT_KINDS}")
    if endpoint not in FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {FAULT_ENDPOINTS}")
    count = body.get("count")
    fraction = body.get("fraction")
    if count is None and fraction is None:
        count = 1
    default_retry = 52_531 if kind == "quota" else 5
    fault = Fault(
        state.next_id(), endpoint, kind, None if count is None else int(count),
        None if fraction is None else float(fraction), int(body.get("retry_after", default_retry)),
        None if body.get("delay_seconds") is None else float(body["delay_seconds"]),
    )  # fmt: skip
    with state.lock:
        state.faults.append(fault)
    return fault


def _user_route(state: State, req: Request, user_id: str, sub: str, body: dict[str, Any]) -> Response:
    user = state.world.user(user_id)
    if user is None:
        return _error(404, f"unknown user {user_id}")
    records = req.arg("records")
    n_records = int(records) if records is not None else None
    if sub == "" and req.method == "GET":
        return json_response(200, next(u for u in _users_json(state) if u["id"] == user_id))
    if sub == "/play" and req.method == "POST":
        added = _play(state, user.index, user_id, body)
        return json_response(200, {"added": [play_json(state, p) for p in added]})
    if sub in ("/plays", "/ground-truth") and req.method == "GET":
        state.materialize()
        now = state.now_ms()
        source = req.arg("source")
        plays: list[Play] = []
        if source in (None, "export"):
            plays += state.export_plays(user.index, n_records)
        if source in (None, "api"):
            with state.lock:
                plays += [p for p in state.plays.get(user_id, []) if p.end_ms <= now]
        return json_response(200, {"user_id": user_id, "now_ms": now, "plays": [play_json(state, p) for p in plays]})
    if sub == "/export.zip" and req.method == "GET":
        data = export.build_zip(state.world, state.export_plays(user.index, n_records))
        return Response(200, data, [("Content-Disposition", 'attachment; filename="my_spotify_data.zip"')],
                        "application/zip")  # fmt: skip
    if sub == "/revoke" and req.method == "POST":
        with state.lock:
            n = 0
            for grant in state.grants.values():
                if grant.user_id == user_id and not grant.revoked:
                    grant.revoked = True
                    n += 1
            state.approved = {a for a in state.approved if a[1] != user_id}
        return json_response(200, {"revoked_grants": n})
    return _error(404, f"no control endpoint {req.method} {req.path}")


def _play(state: State, k: int, user_id: str, body: dict[str, Any]) -> list[Play]:
    world, cat = state.world, state.world.catalog
    state.materialize()
    added: list[Play] = []
    if "simulate_minutes" in body:
        # Listening from now on: plays appear in recently-played once the clock passes their end.
        rate = float(body.get("rate", 1.0))
        if not 0 < rate <= 1:
            raise ValueError("rate is the share of time spent listening, in (0, 1]")
        now = state.now_ms()
        end = now + int(float(body["simulate_minutes"]) * 60_000)
        rng = random.Random(f"{state.seed}:sim:{user_id}:{now}")
        prof = world.profile(k)
        t = now
        while True:
            idx = world._artist_track(rng, rng.choice(prof.favourite_artists))
            duration = cat.track(idx).duration_ms
            if t + duration > end:
                break
            added.append(Play(user_id, t + duration, duration, "track", track_index=idx))
            t += duration + int(duration * (1 / rate - 1))
    else:
        for item in body.get("plays", []):
            ident = item.get("track_id")
            idx = cat.lookup("track", ident) if ident else item.get("track_index")
            if idx is None:
                raise ValueError(f"unknown track {ident!r}")
            duration = cat.track(int(idx)).duration_ms
            ms_played = int(item.get("ms_played", duration))
            end_ms = parse_time(item["played_at"]) if "played_at" in item else state.now_ms()
            ctx = item.get("context")
            context = (ctx["type"], ctx["id"]) if ctx else None
            added.append(Play(user_id, end_ms, ms_played, "track", track_index=int(idx), context=context))
    for p in added:
        state.add_play(p)
    if body.get("advance_clock") and added:
        with state.lock:
            state.clock.set(max(state.now_ms(), max(p.end_ms for p in added)))
    return added
