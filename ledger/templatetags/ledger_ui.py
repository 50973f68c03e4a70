"""Template tags of the ledger app, for pages of the apps below it (the Incidents page lives in
``policies``, which must not import the ledger: its template asks this tag instead)."""

from django import template

from ledger.selectors import recent_budget_alerts as _recent_budget_alerts

register = template.Library()


@register.simple_tag(takes_context=True)
def recent_budget_alerts(context, limit: int = 25) -> list:
    """``{% recent_budget_alerts as budget_alerts %}``: the request tenant's newest unacknowledged budget alerts (one
    query)."""
    tenant = getattr(context.get("request"), "arm_tenant", None)
    return [] if tenant is None else list(_recent_budget_alerts(tenant, limit=limit))
