"""``python -m spotify_emulator [serve options]`` or ``python -m spotify_emulator export ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import export
from .state import Settings, State, load_clients, parse_time


def _world_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=1, help="generator seed (same seed, same data)")
    p.add_argument("--artists", type=int, default=5000)
    p.add_argument("--tracks", type=int, default=20000)
    p.add_argument("--users", type=int, default=5)
    p.add_argument("--start", help="emulator clock start (ISO-8601 or epoch ms); default: now")
    p.add_argument("--backlog-hours", type=int, default=24, help="history before --start served by the API")
    p.add_argument("--export-days", type=int, default=730, help="how far back the export reaches")
    p.add_argument("--recent-plays", type=int, default=0, help="every user has at least N plays served at start")


def _state(args: argparse.Namespace, **kwargs: object) -> State:
    settings = Settings(
        api_backlog_hours=args.backlog_hours, export_days=args.export_days, recent_plays=args.recent_plays
    )
    for key, value in kwargs.items():
        setattr(settings, key, value)
    start = parse_time(args.start) if args.start else None
    return State(
        seed=args.seed, clients=load_clients(getattr(args, "clients", None)), settings=settings, start_ms=start,
        frozen_clock=getattr(args, "frozen_clock", False), n_artists=args.artists, n_tracks=args.tracks,
        n_users=args.users,
    )  # fmt: skip


def serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m spotify_emulator", description="Spotify accounts + Web API emulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--mode", choices=["development", "extended"], default="development")
    p.add_argument("--clients", help="JSON file: [{client_id, client_secret, redirect_uris}]")
    p.add_argument("--frozen-clock", action="store_true", help="the clock moves only via the control API")
    p.add_argument("--no-auto-listen", action="store_true", help="users play nothing unless told to")
    p.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime (expires_in), seconds")
    p.add_argument("--refresh-policy", choices=["omit", "rotate", "rotate_invalidate", "random"], default="omit")
    p.add_argument("--rate-limit", type=int, default=600, help="requests per rolling window per client")
    p.add_argument("--rate-window", type=int, default=30, help="rolling window, seconds")
    p.add_argument("--quota", type=int, default=50_000, help="requests per rolling day per client")
    p.add_argument("--timeout-seconds", type=float, default=35.0, help="sleep of an injected timeout")
    p.add_argument("--verbose", action="store_true", help="log every request")
    _world_args(p)
    args = p.parse_args(argv)
    state = _state(
        args, mode=args.mode, access_token_ttl=args.token_ttl, refresh_policy=args.refresh_policy,
        rate_limit=args.rate_limit, rate_window_seconds=args.rate_window, quota_per_day=args.quota,
        timeout_seconds=args.timeout_seconds, auto_listen=not args.no_auto_listen,
    )  # fmt: skip
    from .server import make

    httpd = make(state, args.host, args.port, args.verbose)
    port = httpd.server_address[1]
    base = f"http://{args.host}:{port}"
    print(f"Spotify emulator on {base} (seed {args.seed}, {args.mode} mode)", flush=True)
    print(f"  SPOTIFY_ACCOUNTS_URL={base}  SPOTIFY_API_URL={base}/v1  control: {base}/_emulator/", flush=True)
    for c in state.clients.values():
        print(
            f"  client_id={c.client_id} client_secret={c.client_secret} redirect_uris={c.redirect_uris}",
            flush=True,
        )
    print(f"  users: {', '.join(u.id for u in state.world.users)}", flush=True)
    print(f"READY {base}", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


def export_cmd(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m spotify_emulator export", description="write my_spotify_data.zip")
    p.add_argument("--user", help="user id (default: the first user)")
    p.add_argument("--out", required=True, help="zip path to write")
    p.add_argument("--records", type=int, help="keep only the N most recent plays of the exported history")
    _world_args(p)
    args = p.parse_args(argv)
    if not args.start:
        print("note: without --start the export is relative to now; pass the server's --start to match it",
              file=sys.stderr)  # fmt: skip
    state = _state(args)
    user = state.world.user(args.user) if args.user else state.world.users[0]
    if user is None:
        print(f"unknown user {args.user}; users: {[u.id for u in state.world.users]}", file=sys.stderr)
        return 2
    plays = state.export_plays(user.index, args.records)
    Path(args.out).write_bytes(export.build_zip(state.world, plays))
    print(f"wrote {args.out}: {len(plays)} plays of {user.id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "export":
        return export_cmd(argv[1:])
    if argv and argv[0] == "serve":
        argv = argv[1:]
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
