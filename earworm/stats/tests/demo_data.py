"""A believable listening history for page tests and screenshots: real-sounding names, genres, two years."""

import random
from datetime import UTC, datetime, timedelta

from earworm.catalog.models import Album, Artist, ArtistGenre, Genre, Track, TrackArtist
from earworm.history.models import Play
from earworm.stats.services import stats_rollups_refresh

ARTISTS = [
    ("Marlow Vance", ["indie folk", "chamber pop"]),
    ("The Paper Lanterns", ["indie rock", "dream pop"]),
    ("Ines Okafor", ["neo soul", "r&b"]),
    ("Kite Theory", ["electronica", "downtempo"]),
    ("Solenne", ["french pop", "chamber pop"]),
    ("Baltic Radio", ["post-punk", "indie rock"]),
    ("Juniper & Ash", ["indie folk"]),
    ("Low Orbit", ["ambient", "electronica"]),
    ("Mira Castellanos", ["latin jazz", "bossa nova"]),
    ("Hollow Pines", []),
    ("DJ Tamsin", ["house", "deep house"]),
    ("Oskar Lindqvist", ["modern classical", "ambient"]),
]
WORDS = [
    "Amber",
    "Harbour",
    "Glass",
    "Lights",
    "Northern",
    "Quiet",
    "Summer",
    "Paper",
    "Honey",
    "Static",
    "Silver",
    "Wild",
    "Echo",
    "Lanterns",
    "Morning",
    "River",
]


def demo_history_create(*, user, plays: int = 2500, days: int = 720, seed: int = 7) -> None:
    """Catalog rows (shared) and `plays` plays of `user` over the last `days`, then the user's rollups."""
    rng = random.Random(seed)
    genres: dict[str, Genre] = {}
    tracks: list[Track] = []
    artists = []
    for a, (name, genre_names) in enumerate(ARTISTS):
        artist, _ = Artist.objects.get_or_create(key=f"demo-ar{a}", defaults={"spotify_id": None, "name": name})
        artists.append(artist)
        for genre_name in genre_names:
            genre = genres.get(genre_name) or Genre.objects.get_or_create(name=genre_name)[0]
            genres[genre_name] = genre
            ArtistGenre.objects.get_or_create(artist=artist, genre=genre)
    for a, artist in enumerate(artists):
        for b in range(2):
            title = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
            album, _ = Album.objects.get_or_create(key=f"demo-al{a}-{b}", defaults={"name": title})
            for t in range(6):
                track, created = Track.objects.get_or_create(
                    key=f"demo-tr{a}-{b}-{t}",
                    defaults={
                        "name": f"{rng.choice(WORDS)} {rng.choice(WORDS).lower()}",
                        "album": album,
                        "duration_ms": rng.randint(150_000, 320_000),
                    },
                )
                if created:
                    TrackArtist.objects.create(track=track, artist=artist, position=0)
                    if t == 5:
                        TrackArtist.objects.create(track=track, artist=artists[(a + 3) % len(artists)], position=1)
                tracks.append(track)
    weights = [1 / (1 + i) ** 0.9 for i in range(len(tracks))]
    rng.shuffle(weights)
    end = datetime.now(UTC).replace(microsecond=0)
    rows = []
    seen = set()
    for _ in range(plays):
        day = end - timedelta(days=rng.triangular(0, days, 0))
        hour = rng.choices(range(24), [1, 1, 0, 0, 0, 0, 1, 3, 4, 3, 3, 3, 4, 3, 3, 3, 4, 5, 6, 6, 5, 4, 3, 2])[0]
        played_at = day.replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
        track = rng.choices(tracks, weights)[0]
        if (track.pk, played_at) in seen or played_at > end:
            continue
        seen.add((track.pk, played_at))
        api = (end - played_at).days < 60
        ms = None if api else rng.randint(30_000, track.duration_ms or 200_000)
        rows.append(Play(user=user, track=track, played_at=played_at, ms_played=ms, source="api" if api else "export"))
    Play.objects.bulk_create(rows, ignore_conflicts=True)
    stats_rollups_refresh(user_id=user.pk)
