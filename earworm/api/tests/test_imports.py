"""`GET /api/v1/imports`: the caller's own import jobs only."""

import pytest

from earworm.accounts.tests.factories import UserFactory
from earworm.history.models import ImportJob

pytestmark = pytest.mark.django_db

FIELDS = {"id", "status", "created_at", "finished_at", "files_total", "files_done", "records_done", "plays_added",
          "skipped", "unresolved", "errors"}  # fmt: skip


def test_unauthenticated_is_401(client):
    response = client.get("/api/v1/imports")
    assert response.status_code == 401
    assert response.json()["message"].startswith("Authentication required")


def test_lists_only_the_callers_jobs_newest_first(auth_client, spotify_account):
    me = spotify_account.user
    other = UserFactory()
    ImportJob.objects.create(user=other, original_name="theirs.zip")
    first = ImportJob.objects.create(user=me, status="done", files_total=2, files_done=["0/a", "1/b"], plays_added=5)
    second = ImportJob.objects.create(
        user=me, status="running", files_total=3, files_done=["x"], skipped={"short_play": 4}, errors=["b.json: bad"]
    )

    response = auth_client.get("/api/v1/imports")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    items = response.json()["items"]
    assert [item["id"] for item in items] == [second.pk, first.pk]
    assert set(items[0]) >= FIELDS
    assert items[0]["files_done"] == 1 and items[0]["files_total"] == 3
    assert items[0]["skipped"] == {"short_play": 4} and items[0]["errors"] == ["b.json: bad"]
    assert items[1]["files_done"] == 2 and items[1]["plays_added"] == 5


def test_another_user_sees_none_of_mine(client, spotify_account):
    ImportJob.objects.create(user=spotify_account.user)
    client.force_login(UserFactory())
    assert client.get("/api/v1/imports").json() == {"items": []}
