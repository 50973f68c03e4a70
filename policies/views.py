"""Operator UI for policies (list, editor, attach, simulate, revision history) and Incidents (the Cost
page is ``ledger.views.cost``).

Writes go through ``policies.services`` (compliance or admin); the envelope validation and the role
checks live there, so the UI and the API cannot disagree.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from arm.errors import DomainError
from arm.forms import submit
from arm.ui import error_message, forbidden, htmx_event, non_empty, paginate
from audit.selectors import label_targets, object_history
from policies import selectors, services
from policies.choices import SpendPeriod
from policies.engine import TIER_DESCRIPTIONS
from policies.filtersets import PolicyFilterSet
from policies.forms import TIER_NAMES, InstanceForm, PolicyForm
from policies.models import ATTACHED_POLICY, PolicyEnvelope, attached_policy
from registry import views as registry_views
from registry.models import AgentInstance
from tenancy.choices import Role
from tenancy.pages import can, tenant_page
from tenancy.scoping import scoped_get

COMPLIANCE = services.POLICY_WRITE_ROLES
EDITOR_LIST_SIZE = 25


def _tiers():
    return [{"tier": t, "name": TIER_NAMES[t], "text": TIER_DESCRIPTIONS[t]} for t in TIER_DESCRIPTIONS]


@tenant_page()
def policy_list(request):
    """A page of policies, filtered and sorted in SQL (``PolicyFilterSet``), with live-instance counts for
    that page only: a constant number of queries however many policies and instances there are."""
    base = selectors.policies_of(request.arm_tenant)
    params = non_empty(request.GET)
    params.setdefault("ordering", "name")
    filterset = PolicyFilterSet(params, queryset=base, request=request)
    qs = filterset.qs if filterset.is_valid() else base.none()
    page = paginate(request, qs.order_by(*qs.query.order_by, "pk"))
    rows = list(page.object_list)
    selectors.annotate_live_instance_counts(rows)
    return render(
        request,
        "policies/list.html",
        {
            "rows": rows,
            "page": page,
            "filters": request.GET,
            "can_edit": can(request, *COMPLIANCE),
            "tiers": _tiers(),
        },
    )


def _editor_context(request, policy, form) -> dict:
    """The editor: the instances under the policy and those it can be attached to are each one page
    (``attached_page`` / ``attach_page``, 25 by name; the attachable list searchable by name)."""
    context = {"form": form, "policy": policy, "tiers": _tiers(), "can_edit": can(request, *COMPLIANCE)}
    if policy is not None:
        attached = paginate(
            request, selectors.policy_attached(policy), default_size=EDITOR_LIST_SIZE, param="attached_page", sizes=()
        )
        attach_search = request.GET.get("attach_search", "")
        attachable = paginate(
            request,
            selectors.policy_attachable(policy, attach_search),
            default_size=EDITOR_LIST_SIZE,
            param="attach_page",
            sizes=(),
        )
        context.update(
            attached_page=attached,
            attached=list(attached.object_list),
            attachable_page=attachable,
            attachable=list(attachable.object_list),
            attach_search=attach_search,
            revisions=object_history(policy, limit=50),
            recent_decisions=selectors.policy_recent_decisions(policy),
        )
    return context


@tenant_page(roles=COMPLIANCE)
def policy_create(request):
    form = PolicyForm(request.POST or None)
    if request.method == "POST":
        tenant, actor = request.arm_tenant, request.arm_actor
        policy = submit(
            form,
            lambda data: services.policy_create(tenant=tenant, actor=actor, **data),
            lambda data: services.policy_check(tenant=tenant, **data),
        )
        if policy is not None:
            messages.success(request, f"Policy {policy.name} created (revision 1). Attach it to instances below.")
            return redirect("ui:policy_edit", pk=policy.pk)
    return render(request, "policies/editor.html", _editor_context(request, None, form))


@tenant_page()
def policy_edit(request, pk):
    policy = scoped_get(PolicyEnvelope.objects.select_related("tenant"), request.arm_tenant, pk)
    if request.method == "POST":
        if not can(request, *COMPLIANCE):
            return forbidden(request, "Editing a policy needs the compliance or admin role.")
        form = PolicyForm(request.POST)
        before = policy.revision
        saved = submit(
            form,
            lambda data: services.policy_update(policy=policy, actor=request.arm_actor, **data),
            lambda data: services.policy_check(tenant=request.arm_tenant, policy=policy, **data),
        )
        if saved is not None:
            if saved.revision == before:
                messages.info(request, "Nothing changed; the revision stays the same.")
            else:
                messages.success(request, f"Policy {saved.name} saved as revision {saved.revision}.")
            return redirect("ui:policy_edit", pk=saved.pk)
    else:
        form = PolicyForm(initial=PolicyForm.initial_for(policy))
    if not can(request, *COMPLIANCE):
        for field in form.fields.values():
            field.disabled = True
    return render(request, "policies/editor.html", _editor_context(request, policy, form))


@tenant_page(roles=COMPLIANCE)
@require_POST
def policy_delete(request, pk):
    """Delete an envelope no instance uses; the service refuses (409) while one is attached."""
    policy = scoped_get(PolicyEnvelope.objects.select_related("tenant"), request.arm_tenant, pk)
    try:
        services.policy_delete(policy=policy, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_message(exc))
        return redirect("ui:policy_edit", pk=pk)
    messages.success(request, f"Policy {policy.name} deleted.")
    return redirect("ui:policies")


@tenant_page(roles=COMPLIANCE)
@require_POST
def policy_simulate(request, pk):
    """What would the typed (unsaved) changes have decided for this policy's recent decisions?"""
    policy = scoped_get(PolicyEnvelope.objects.select_related("tenant"), request.arm_tenant, pk)
    form = PolicyForm(request.POST)
    result, error = None, ""
    if form.is_valid():
        proposed = form.service_data()
        changes = {k: v for k, v in proposed.items() if getattr(policy, k) != v}
        try:
            result = services.policy_simulate(policy=policy, changes=changes, actor=request.arm_actor, limit=1000)
        except (ValidationError, DomainError) as exc:
            error = error_message(exc)
    else:
        error = "Fix the highlighted fields first: " + "; ".join(
            f"{name}: {' '.join(errs)}" for name, errs in form.errors.items()
        )
    return render(request, "policies/_simulation.html", {"result": result, "error": error, "policy": policy})


@tenant_page(roles=COMPLIANCE)
@require_POST
def policy_attach(request, pk):
    """Attach to (or detach from) one instance. Moving an instance off another policy asks first: the page
    comes back with a confirmation naming the policy it would replace."""
    policy = scoped_get(PolicyEnvelope.objects.select_related("tenant"), request.arm_tenant, pk)
    back = redirect(reverse("ui:policy_edit", args=[pk]) + "#attach")
    if not request.POST.get("instance"):
        messages.error(request, "Choose the instance to attach the policy to.")
        return back
    instance = scoped_get(
        AgentInstance.objects.select_related("tenant", ATTACHED_POLICY),
        request.arm_tenant,
        request.POST.get("instance"),
    )
    current = attached_policy(instance)
    detach = request.POST.get("action") == "detach"
    replacing = not detach and current is not None and current.pk != policy.pk
    if replacing and request.POST.get("confirm") != "replace":
        form = PolicyForm(initial=PolicyForm.initial_for(policy))
        context = {**_editor_context(request, policy, form), "confirm_replace": instance, "replaced": current}
        return render(request, "policies/editor.html", context)
    try:
        services.policy_attach(instance=instance, policy=None if detach else policy, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_message(exc))
    else:
        if detach:
            messages.success(request, f"Detached {policy.name} from {instance}; its calls are now denied (no policy).")
        elif replacing:
            messages.success(request, f"{instance} moved from {current.name} to {policy.name} (r{policy.revision}).")
        else:
            messages.success(request, f"Attached {policy.name} (r{policy.revision}) to {instance}.")
    return back


@tenant_page(methods=("GET", "POST"))
def instance_policy(request, pk):
    """The instance drawer's Policy row (GET, loaded into ``registry/_instance_body.html``, which only names
    this URL: the binding is policies'), and for compliance the control that attaches a policy to the
    instance or detaches it (POST; the drawer comes back)."""
    if request.method == "GET":
        instance = scoped_get(AgentInstance.objects.select_related(ATTACHED_POLICY), request.arm_tenant, pk)
        can_attach = can(request, *COMPLIANCE)
        context = {
            "instance": instance,
            "policy": attached_policy(instance),
            "can_attach": can_attach,
            "policies": list(selectors.policies_of(request.arm_tenant).order_by("name")) if can_attach else [],
        }
        return render(request, "policies/_instance_policy.html", context)
    if not can(request, *COMPLIANCE):
        return forbidden(request, f"This needs one of the roles: {', '.join(COMPLIANCE)}.")
    instance = scoped_get(AgentInstance.objects.select_related("tenant"), request.arm_tenant, pk)
    policy_id = request.POST.get("policy") or None
    policy = scoped_get(PolicyEnvelope.objects, request.arm_tenant, policy_id) if policy_id else None
    try:
        services.policy_attach(instance=instance, policy=policy, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_message(exc))
    else:
        if policy is None:
            messages.success(request, f"Detached the policy from {instance}: its calls are now denied.")
        else:
            messages.success(request, f"{instance} now runs under {policy.name} (r{policy.revision}).")
    if not request.htmx:
        return redirect("ui:instance_detail", pk=pk)
    instance = scoped_get(
        AgentInstance.objects.select_related("version__template", "environment", "provider"), request.arm_tenant, pk
    )
    response = render(
        request,
        "registry/_instance_drawer.html",
        {**registry_views.instance_context(request, instance), "oob_toasts": True},
    )
    return htmx_event(response, "arm:refresh")


@tenant_page(roles=registry_views.OPERATOR)
def instance_create(request):
    """The New instance modal (registry's) with the policy the instance starts under."""
    return registry_views.instance_create_page(request, InstanceForm, services.instance_create)


@tenant_page()
def instance_decisions(request, pk):
    """Lazy-loaded section of the instance drawer: spend against limits and the latest decisions."""
    instance = scoped_get(AgentInstance.objects.select_related(ATTACHED_POLICY), request.arm_tenant, pk)
    spend = selectors.instance_spend(instance, timezone.now())
    policy = attached_policy(instance)
    zero = Decimal(0)
    context = {
        "instance": instance,
        "day_bar": limit_bar(spend.get(SpendPeriod.DAY, zero), policy.cost_limit_daily_usd if policy else None),
        "month_bar": limit_bar(spend.get(SpendPeriod.MONTH, zero), policy.cost_limit_monthly_usd if policy else None),
        "decisions": selectors.instance_recent_decisions(instance),
    }
    return render(request, "policies/_instance_decisions.html", context)


# ---------------------------------------------------------------- cost


def limit_percent(amount: Decimal, limit: Decimal | None) -> float | None:
    if limit is None:
        return None
    if limit == 0:
        return 100.0 if amount > 0 else 0.0
    return float(min(Decimal(100), amount / limit * 100))


def limit_bar(amount: Decimal, limit: Decimal | None) -> dict:
    """Percent of the limit, and a bar width that stays visible for any spend above zero."""
    pct = limit_percent(amount, limit)
    width = None if pct is None else (max(pct, 1.5) if amount > 0 else 0)
    return {"amount": amount, "limit": limit, "pct": pct, "width": width}


# ---------------------------------------------------------------- incidents


@tenant_page()
def incidents(request):
    """Integrity failures (the 50 newest), quarantined instances (a page of 25, ``quarantined_page``), budget
    thresholds crossed (rendered by the ledger app's ``budget_alerts`` tag: the ledger sits above this app)
    and denied high/critical calls (a page, ``page``); each list sorted and bounded in SQL."""
    tenant = request.arm_tenant
    quarantined = paginate(
        request, selectors.quarantined_instances(tenant), default_size=25, param="quarantined_page", sizes=()
    )
    page = paginate(request, selectors.denied_high_risk(tenant), default_size=25)
    return render(
        request,
        "policies/incidents.html",
        {
            "integrity": label_targets(selectors.integrity_failures(tenant)),
            "quarantined": list(quarantined.object_list),
            "quarantined_page": quarantined,
            "denied": list(page.object_list),
            "page": page,
            "can_lift": can(request, Role.APPROVER),
        },
    )
