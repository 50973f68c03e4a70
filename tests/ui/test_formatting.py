"""Money and times: one ``usd`` filter (thousands separators, sub-cent amounts stay visible) and one ``when``
filter (relative today, a date before today, the absolute UTC time on hover) used across the pages."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from policies.choices import Decision, SpendPeriod
from policies.models import InstanceSpend, PolicyDecision
from theme.templatetags.arm_ui import usd, when, when_text

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("12345.67"), "$12,345.67"),
        (Decimal("1234567.1"), "$1,234,567.10"),
        (Decimal("0.004"), "$0.004"),
        (Decimal("0.0125"), "$0.01"),
        (Decimal("0.00004"), "<$0.0001"),
        (Decimal("0"), "$0.00"),
        (Decimal("-3.5"), "-$3.50"),
        (7, "$7.00"),
        (None, "—"),
    ],
)
def test_usd(value, text):
    assert usd(value) == text


NOW = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (NOW - dt.timedelta(seconds=20), "just now"),
        (NOW - dt.timedelta(minutes=3), "3 min ago"),
        (NOW - dt.timedelta(hours=2, minutes=5), "2 h 5 min ago"),
        (NOW + dt.timedelta(minutes=12), "in 12 min"),
        (NOW - dt.timedelta(hours=16), "2026-11-26 23:00"),  # yesterday: a date, not "16 h ago"
        (NOW - dt.timedelta(days=40), "2026-10-18 15:00"),
        (NOW + dt.timedelta(days=3), "2026-11-30 15:00"),
    ],
)
def test_when_text(value, text):
    assert when_text(value, now=NOW) == text


def test_when_renders_a_time_element_with_the_utc_time_on_hover():
    html = str(when(timezone.now() - dt.timedelta(minutes=3)))
    assert re.fullmatch(r'<time datetime="[0-9T:-]+Z" title="[0-9 :-]+ UTC">3 min ago</time>', html)
    assert when(None) == "—" and when(None, "never") == "never"


def _decision(world, cost):
    return PolicyDecision.objects.create(
        tenant=world.tenant,
        instance=world.instance,
        policy_id=world.policy.pk,
        tool="crm.lookup",
        params_hash="0" * 64,
        decision=Decision.ALLOW,
        risk="low",
        reasons=[],
        actor="key:x",
        estimated_cost_usd=cost,
    )


def test_cost_page_uses_separators_and_keeps_sub_cent_spend(login, viewer, world):
    world.policy.cost_limit_daily_usd = Decimal("20000")
    world.policy.cost_limit_monthly_usd = Decimal("50000")
    world.policy.save()
    today = timezone.now().date()
    for period, start, amount in (
        (SpendPeriod.DAY, today, Decimal("12345.67")),
        (SpendPeriod.MONTH, today.replace(day=1), Decimal("0.004") + Decimal("12345.67")),
    ):
        InstanceSpend.objects.create(
            tenant=world.tenant, instance=world.instance, period=period, period_start=start, amount_usd=amount
        )
    html = login(viewer).get(reverse("ui:cost")).content.decode()
    assert "$12,345.67" in html and "of $20,000.00" in html and "of $50,000.00" in html
    assert "12345.67" not in html


def test_sub_cent_spend_is_not_shown_as_zero(login, viewer, world):
    InstanceSpend.objects.create(
        tenant=world.tenant,
        instance=world.instance,
        period=SpendPeriod.DAY,
        period_start=timezone.now().date(),
        amount_usd=Decimal("0.004"),
    )
    client = login(viewer)
    assert "$0.004" in client.get(reverse("ui:cost")).content.decode()
    _decision(world, Decimal("0.0040"))
    drawer = client.get(reverse("ui:instance_decisions", args=[world.instance.pk])).content.decode()
    spend = drawer.split('data-testid="instance-spend"', 1)[1]
    assert "$0.004" in spend.split("Spend this month")[0]
    assert 'data-testid="decision-cost">$0.004<' in drawer
    assert '<time datetime="' in drawer and "just now" in drawer


def test_policy_list_limits_use_the_money_format(login, viewer, world):
    world.policy.cost_limit_daily_usd = Decimal("1500")
    world.policy.cost_limit_monthly_usd = Decimal("30000.5")
    world.policy.save()
    html = login(viewer).get(reverse("ui:policies")).content.decode()
    assert "$1,500.00 / $30,000.50" in html


def test_times_are_relative_with_the_utc_time_on_hover(login, viewer, approver, world):
    from registry.models import AgentInstance

    AgentInstance.objects.filter(pk=world.instance.pk).update(
        last_heartbeat_at=timezone.now() - dt.timedelta(minutes=3)
    )
    client = login(viewer)
    instances = client.get(reverse("ui:directory_tab", args=["instances"])).content.decode()
    assert re.search(r'<time datetime="[^"]+" title="[^"]+ UTC">3 min ago</time>', instances)
    versions = client.get(reverse("ui:directory_tab", args=["versions"])).content.decode()
    assert "<time datetime=" in versions and "just now" in versions
    drawer = client.get(reverse("ui:instance_detail", args=[world.instance.pk]), HTTP_HX_REQUEST="true")
    assert "3 min ago</time>" in drawer.content.decode()
    approvals = login(approver).get(reverse("ui:approvals")).content.decode()
    time_left = approvals.split('data-testid="time-left"', 1)[1][:600]
    assert re.search(r"expires <time [^>]+>in \d+ (min|h)", time_left)
    from registry.services import version_verify_integrity

    version_verify_integrity(version=world.root)  # factories write no audit records; this does
    audit = client.get(reverse("ui:audit")).content.decode().split('data-testid="audit-table"', 1)[1]
    assert "<time datetime=" in audit and "just now" in audit
