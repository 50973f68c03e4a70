"""Template tags of the approvals app (the sidebar badge in ``base.html``)."""

from django import template
from django.utils import timezone

from approvals.selectors import pending_count

register = template.Library()


@register.simple_tag(takes_context=True)
def pending_approvals(context) -> int:
    """The count for the sidebar badge (one indexed COUNT per page)."""
    request = context.get("request")
    tenant = getattr(request, "arm_tenant", None)
    return 0 if tenant is None else pending_count(tenant, timezone.now())
