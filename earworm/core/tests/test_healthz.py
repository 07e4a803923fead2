import pytest

from earworm.core.ratelimit import quota_gate_record_config_error

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_queue(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["queue"]["status"] == "ok"


def test_a_configuration_error_degrades_but_does_not_fail_the_check(client):
    quota_gate_record_config_error(message="Spotify rejected the app's client credentials.")

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"


def test_a_broken_queue_fails_the_check(client, mocker):
    mocker.patch("earworm.core.views.HUEY.pending_count", side_effect=ConnectionError("redis down"))

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["queue"] == {"status": "unavailable"}
