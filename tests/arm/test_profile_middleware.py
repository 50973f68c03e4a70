"""The served-process profiler (ARM_PROFILE_DIR, used by ``bench --profile-dir``)."""

from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from arm.middleware import ProfileMiddleware


def test_profiles_every_request_but_the_cold_first_one(tmp_path):
    with override_settings(ARM_PROFILE_DIR=str(tmp_path / "profiles")):
        middleware = ProfileMiddleware(lambda request: HttpResponse("ok"))
    factory = RequestFactory()

    first = middleware(factory.get("/api/health/"))
    assert first.status_code == 200
    assert list((tmp_path / "profiles").iterdir()) == []  # the cold start is not profiled

    middleware(factory.get("/api/health/"))
    middleware(factory.post("/api/v1/instances/x/heartbeat/"))
    names = sorted(path.name for path in (tmp_path / "profiles").iterdir())
    assert len(names) == 2
    assert names[0].endswith("-00000-GET-_api_health_.txt")
    assert names[1].endswith("-00001-POST-_api_v1_instances_x_heartbeat_.txt")
    assert "Recorded:" in (tmp_path / "profiles" / names[0]).read_text()  # pyinstrument's text report
