"""A finished request leaves only garbage (nothing module-level keeps it), and served processes collect
that garbage as the next request starts (``arm.runtime.collect_before_request``), not in one request in
fifty."""

import gc
import weakref

import pytest
from django.core.signals import request_started
from django.test import Client

from arm import runtime
from tests.factories import TemplateFactory, VersionFactory


class _Cycle:
    def __init__(self):
        self.me = self


@pytest.fixture
def collector_off():
    """Automatic collections off, so that only what the test does collects; back on afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


def _garbage_cycle() -> weakref.ref:
    return weakref.ref(_Cycle())


def test_a_finished_action_request_is_not_kept_alive(operator, tenant):
    """drf-spectacular's schema class for an ``@action`` used to keep the last request's view (and with
    it the request, its serializers and objects) alive until the next request of that action."""
    version = VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="DRAFT")
    response = operator.client.post(
        f"/api/v1/versions/{version.pk}/transition/", {"to": "TESTING", "reason": "r"}, format="json"
    )
    assert response.status_code == 200, response.content
    view = weakref.ref(response.renderer_context["view"])
    del response
    gc.collect()
    assert view() is None


def test_the_actions_schema_is_still_documented():
    """The schema generator sets each action's ``@extend_schema`` itself: the document keeps it."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    transition = schema["paths"]["/api/v1/versions/{id}/transition/"]["post"]
    assert transition["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/VersionTransitionRequest"
    )
    assert {"400", "404", "409"} <= set(transition["responses"])


def test_the_young_generation_is_collected_as_a_request_starts(collector_off):
    cycle = _garbage_cycle()
    assert cycle() is not None  # only the collector frees a cycle
    assert runtime.collect_before_request() == 0
    assert cycle() is None


def test_an_older_generation_is_collected_when_its_threshold_says_so(collector_off):
    gc.collect()
    for _ in range(runtime.GC_THRESHOLDS[1]):
        gc.collect(0)
    assert runtime.collect_before_request() == 1
    for _ in range(runtime.GC_THRESHOLDS[2]):
        gc.collect(1)
    assert runtime.collect_before_request() == 2
    assert gc.get_count()[1:] == (0, 0)


@pytest.fixture
def tuned(monkeypatch, settings):
    """``tune_gc`` as served processes run it, without freezing this test process's heap."""
    monkeypatch.setattr(runtime.gc, "freeze", lambda: None)
    monkeypatch.setattr(runtime.gc, "set_threshold", lambda *thresholds: None)
    yield
    request_started.disconnect(dispatch_uid="arm.runtime.collect_before_request")


def test_served_processes_collect_before_each_request(tuned, settings, db, collector_off):
    settings.ARM_GC_TUNING = True
    assert runtime.tune_gc()
    cycle = _garbage_cycle()
    assert Client().get("/api/health/").status_code == 200
    assert cycle() is None


def test_with_the_tuning_off_requests_leave_the_collector_alone(tuned, settings, db, collector_off):
    settings.ARM_GC_TUNING = False
    assert not runtime.tune_gc()
    cycle = _garbage_cycle()
    assert Client().get("/api/health/").status_code == 200
    assert cycle() is not None
