"""Audit page: the tenant's change records with filters, and the chain verification result."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from arm.ui import non_empty, paginate
from audit.choices import EventType
from audit.filtersets import ChangeRecordFilterSet
from audit.keys import configured_keyring
from audit.models import ChangeRecord
from audit.selectors import label_targets
from audit.services import verify_chain
from tenancy.pages import tenant_page
from tenancy.scoping import scoped
from tenancy.selectors import prime_actors

TARGET_TYPES = (
    "AgentTemplate",
    "AgentVersion",
    "AgentInstance",
    "Environment",
    "Provider",
    "PolicyEnvelope",
    "ApprovalRequest",
    "ApiKey",
    "Membership",
)


@tenant_page()
def audit_log(request):
    """Newest first. Verification walks the whole chain, so it runs on request (``?verify=1``)."""
    base = scoped(ChangeRecord.objects.all(), request.arm_tenant)
    filterset = ChangeRecordFilterSet(non_empty(request.GET), queryset=base, request=request)
    rows_qs = filterset.qs if filterset.is_valid() else base.none()
    # Newest first by the per-tenant sequence; the count stops at 10,000 (a chain may hold millions).
    page = paginate(request, rows_qs.order_by("-seq"))
    verification = verify_chain(request.arm_tenant) if request.GET.get("verify") else None
    rows = label_targets(list(page.object_list))
    prime_actors(request, (r.actor for r in rows))
    context = {
        "page": page,
        "rows": rows,
        "filters": request.GET,
        "filter_errors": filterset.errors,
        "event_types": EventType.values,
        "target_types": TARGET_TYPES,
        "verification": verification,
        "chain_head": base.order_by("-seq").values("seq", "hash", "created_at").first(),
    }
    if request.htmx and request.htmx.target == "audit-results":
        return render(request, "audit/_results.html", context)
    return render(request, "audit/audit.html", context)


@require_safe
def public_keys(request):
    """``/.well-known/arm-audit-keys.json``: the public keys of audit checkpoints (the active one and the
    retired ones still trusted, each with its id and validity), unauthenticated, for auditors to archive
    and pin. Keys that cannot be loaded answer 503 (``manage.py check`` names the fault) — never a
    half-empty document an auditor might archive."""
    try:
        document = configured_keyring().document()
    except ImproperlyConfigured:
        return JsonResponse(
            {"code": "keys_unavailable", "message": "The audit keys are misconfigured on this server."}, status=503
        )
    response = JsonResponse(document, json_dumps_params={"indent": 2})
    response["Cache-Control"] = "public, max-age=300"
    response["Access-Control-Allow-Origin"] = "*"
    return response
