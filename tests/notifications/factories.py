"""Factories for the notifications tests: rows as the services and the outbox write them."""

import factory
from django.utils import timezone

from notifications.choices import DeliveryStatus, EndpointKind
from notifications.models import Delivery, Endpoint, Event
from notifications.signing import new_secret


class EndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Endpoint

    tenant = None
    name = factory.Sequence(lambda n: f"endpoint-{n}")
    kind = EndpointKind.WEBHOOK
    url = factory.Sequence(lambda n: f"https://hooks.example.com/arm/{n}")
    event_types = factory.LazyFunction(list)
    secret = factory.LazyFunction(new_secret)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    tenant = None
    type = "approval.requested"
    payload = factory.LazyAttribute(
        lambda o: {"type": o.type, "timestamp": timezone.now().isoformat(), "data": {"message": "factory"}}
    )


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A delivery in ``status`` (default succeeded after one attempt) of a new event to ``endpoint``."""

    class Meta:
        model = Delivery

    endpoint = factory.SubFactory(EndpointFactory)
    tenant = factory.SelfAttribute("endpoint.tenant")
    event = factory.LazyAttribute(lambda o: EventFactory(tenant=o.endpoint.tenant))
    status = DeliveryStatus.SUCCEEDED
    attempts = 1
    last_status_code = 200
    last_latency_ms = 42
    delivered_at = factory.LazyFunction(timezone.now)
    next_attempt_at = None
