"""Operator UI for the registry: the Directory (templates / versions / instances), the version and
instance drawers, the create/edit modals, Evaluations and Federation.

Lists use the same FilterSets as the API on a tenant-scoped queryset and run a constant number of
queries. Every write calls a ``registry.services`` function; its errors go back into the form or a toast.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget

from arm.errors import Conflict, DomainError
from arm.forms import submit
from arm.ui import apply_service_errors, error_message, field_for_error, htmx_event, link_rows, non_empty, paginate
from arm.validators import as_uuid
from audit.selectors import object_history
from registry import services
from registry.choices import EnvironmentTier, EvalStatus, Health, InstanceState, Risk, VersionState
from registry.filtersets import EvaluationFilterSet, InstanceFilterSet, TemplateFilterSet, VersionFilterSet
from registry.flow import INSTANCE_FLOW, VERSION_FLOW, lifecycle_options, state_flow
from registry.forms import (
    TIER_GATES,
    ApiKeyForm,
    EnvironmentForm,
    EvaluationForm,
    InstanceForm,
    ProviderForm,
    TemplateForm,
    VersionForm,
    parent_choices,
    version_options,
)
from registry.genome import GENOME_EXCERPT_CHARS, genome_problem, stored_text
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, EvaluationResult, Provider
from registry.selectors import VERSION_CHOICES_LIMIT, version_children, version_diff, version_lineage
from tenancy.choices import Role
from tenancy.pages import can, tenant_page
from tenancy.scoping import scoped, scoped_get
from tenancy.selectors import prime_actors
from tenancy.views import api_keys_page

OPERATOR = (Role.OPERATOR,)

SORTS = [
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-updated_at", "Recently updated"),
    ("updated_at", "Least recently updated"),
]
VERSION_SORTS = SORTS + [("version_label", "Label A→Z")]
TEMPLATE_SORTS = SORTS + [("name", "Name A→Z")]
INSTANCE_SORTS = SORTS + [("name", "Name A→Z"), ("-last_heartbeat_at", "Latest heartbeat")]


# ---------------------------------------------------------------- directory


def _templates_qs(request):
    # Version counts are added for the page's rows only (annotate_templates): aggregating every version
    # of the tenant before LIMIT would grow with the registry.
    return scoped(AgentTemplate.objects, request.arm_tenant)


def annotate_templates(request, templates: list) -> None:
    """One grouped query for the templates on this page: version count, latest version time and label.

    The template ids come from the tenant-scoped page, so they scope the query; filtering on the tenant
    as well would steer the database to the (tenant, created) index and a scan of every version."""
    latest = AgentVersion.objects.filter(template_id=OuterRef("template_id")).order_by("-created_at", "-pk")
    stats = {
        row["template_id"]: row
        for row in AgentVersion.objects.filter(template_id__in=[t.pk for t in templates])
        .values("template_id")
        .annotate(n=Count("id"), last=Max("created_at"), label=Subquery(latest.values("version_label")[:1]))
        .order_by()
    }
    for template in templates:
        row = stats.get(template.pk, {})
        template.version_count = row.get("n", 0)
        template.last_version_at = row.get("last")
        template.last_version_label = row.get("label")


def _versions_qs(request):
    return scoped(AgentVersion.objects, request.arm_tenant)


def _instances_qs(request):
    # The policy column reads the binding through the relation policies adds (policies.PolicyAttachment).
    return scoped(AgentInstance.objects, request.arm_tenant).select_related(
        "version__template", "environment", "provider", "policy_attachment__policy"
    )


# Each tab's rows from its page of the filtered queryset (the page is counted on that queryset, before
# any join a row adds).


def _template_rows(request, page_qs) -> list:
    rows = list(page_qs)
    annotate_templates(request, rows)
    return rows


def _version_rows(request, page_qs) -> list:
    # The columns a row shows, read as plain values: no model instances (and their audit snapshots), no
    # whole parent for its label, and dict lookups are a template's fastest. Building and rendering 50
    # version models was two thirds of the page.
    rows = list(
        page_qs.values(
            "pk",
            "version_label",
            "genome",
            "genome_hash",
            "lifecycle_state",
            "eval_status",
            "integrity_status",
            "created_at",
            template_name=F("template__name"),
            parent_label=F("parent__version_label"),
        )
    )
    link_rows(rows, "ui:version_detail")
    for row in rows:
        # A stored genome is not trusted (a row edited in the database): an unreadable one marks the row.
        genome = row.pop("genome")
        row["genome_problem"] = genome_problem(genome)
        row["model_name"] = "" if row["genome_problem"] else genome["model_config"]["name"]
    return rows


def _instance_rows(request, page_qs) -> list:
    rows = list(page_qs)
    link_rows(rows, "ui:instance_detail")
    now = timezone.now()
    window = request.arm_tenant.heartbeat_window_seconds
    for row in rows:
        row.health_status = row.health(now, window)
    return rows


TABS = {
    "templates": (TemplateFilterSet, _templates_qs, _template_rows, TEMPLATE_SORTS, ("search", "tags")),
    "versions": (
        VersionFilterSet,
        _versions_qs,
        _version_rows,
        VERSION_SORTS,
        ("search", "lifecycle_state", "eval_status", "tags", "environment", "template", "parent"),
    ),
    "instances": (
        InstanceFilterSet,
        _instances_qs,
        _instance_rows,
        INSTANCE_SORTS,
        ("search", "state", "environment", "health", "tags", "provider", "policy", "version", "template"),
    ),
}


HIDDEN_FILTERS = ("provider", "policy", "version", "template", "parent")


@tenant_page()
def directory(request, tab: str = "versions"):
    if tab not in TABS:
        raise Http404("No such tab")
    filterset_class, make_qs, make_rows, sorts, filter_keys = TABS[tab]
    params = non_empty(request.GET)
    if not params.get("ordering"):
        params["ordering"] = "-created_at"
    filterset = filterset_class(params, queryset=make_qs(request), request=request)
    if filterset.is_valid():
        rows_qs = filterset.qs
        filter_errors = {}
    else:
        rows_qs = make_qs(request).none()
        filter_errors = filterset.errors
    page = paginate(request, rows_qs)
    rows = make_rows(request, page.object_list)
    active_filters = any(request.GET.get(k) for k in filter_keys)
    # Filters reached by links (provider, template …) that have no control in the filter bar: kept as
    # hidden inputs so changing another filter does not drop them.
    hidden_filters = [(k, params[k]) for k in HIDDEN_FILTERS if k in filter_keys and params.get(k)]
    context = {
        "tab": tab,
        "page": page,
        "rows": rows,
        "filters": request.GET,
        "filter_errors": filter_errors,
        "active_filters": active_filters,
        "hidden_filters": hidden_filters,
        "sorts": sorts,
        "ordering": params["ordering"],
        "version_states": VersionState.values,
        "instance_states": InstanceState.values,
        "eval_statuses": EvalStatus.values,
        "healths": Health.values,
        "environments": list(scoped(Environment.objects, request.arm_tenant).order_by("name")),
        "can_operate": can(request, *OPERATOR),
        "global_q": request.GET.get("search", ""),
    }
    if request.htmx and request.htmx.target == "directory-results":
        return render(request, "registry/_directory_results.html", context)
    return render(request, "registry/directory.html", context)


SEARCH_PER_KIND = 5


@tenant_page()
def search(request):
    """Global search: a few matches of each kind (templates, versions, instances) on one page, each kind
    linking to its Directory tab filtered by the query. One bounded query per kind (LIMIT per kind + 1, to
    know whether there are more), plus one for the templates' version counts."""
    q = request.GET.get("q", "").strip()
    if not q:
        return redirect("ui:directory_tab", "versions")
    groups = []
    for tab, title in (("templates", "Templates"), ("versions", "Versions"), ("instances", "Instances")):
        filterset_class, make_qs, make_rows, _, _ = TABS[tab]
        filterset = filterset_class({"search": q}, queryset=make_qs(request), request=request)
        found = filterset.qs if filterset.is_valid() else make_qs(request).none()
        rows = make_rows(request, found.order_by("-created_at", "-pk")[: SEARCH_PER_KIND + 1])
        more = len(rows) > SEARCH_PER_KIND
        rows = rows[:SEARCH_PER_KIND]
        url = reverse("ui:directory_tab", args=[tab]) + "?" + urlencode({"search": q})
        groups.append({"tab": tab, "title": title, "rows": rows, "more": more, "url": url})
    return render(
        request,
        "registry/search.html",
        {"q": q, "global_q": q, "groups": groups, "per_kind": SEARCH_PER_KIND, "found": any(g["rows"] for g in groups)},
    )


# ---------------------------------------------------------------- version drawer


def _tools(genome) -> list[dict]:
    if not isinstance(genome, dict):
        return []
    tools = []
    for tool in genome.get("tool_manifest") or []:
        if isinstance(tool, dict):
            tools.append({**tool, "risk": tool.get("risk", Risk.MEDIUM)})
    return tools


def collapse_verifications(records) -> list:
    """Every drawer read records an INTEGRITY_VERIFIED; show a run of them as one line with a count."""
    collapsed = []
    for record in records:
        previous = collapsed[-1] if collapsed else None
        if previous is not None and record.event_type == previous.event_type == "INTEGRITY_VERIFIED":
            previous.repeat += 1
            continue
        record.repeat = 1
        collapsed.append(record)
    return collapsed


def version_context(request, version: AgentVersion, *, verify: bool = True) -> dict:
    actor = request.arm_actor
    integrity = services.version_verify_integrity(version=version, actor=actor) if verify else None
    options = lifecycle_options(version, "lifecycle_state", actor)
    lineage = version_lineage(version)
    parent = lineage[0] if lineage else None
    diff, diff_problem = None, ""
    if parent is not None:
        try:
            diff = version_diff(version, parent)
        except Conflict as exc:
            diff_problem = exc.message
    history = collapse_verifications(object_history(version, limit=100))[:25]
    # A genome that breaks the genome rules (its row edited in the database) shows none of its fields:
    # the drawer names the rule and shows the start of the stored text (escaped) instead.
    problem = genome_problem(version.genome)
    genome = {} if problem else version.genome
    model = genome.get("model_config") or {}
    instances = list(scoped(version.instances.all(), request.arm_tenant).select_related("environment", "provider")[:20])
    evaluations = list(scoped(version.evaluations.all(), request.arm_tenant)[:20])
    prime_actors(request, (r.actor for r in history), (e.created_by for e in evaluations))
    return {
        "version": version,
        "integrity": integrity,
        "options": options,
        "lineage": list(reversed(lineage)),
        "children": list(version_children(version)),
        "diff": diff,
        "diff_problem": diff_problem,
        "history": history,
        "evaluations": evaluations,
        "genome": genome,
        "genome_problem": problem,
        "genome_excerpt": stored_text(version.genome)[:GENOME_EXCERPT_CHARS] if problem else "",
        "model": model,
        "tools": _tools(genome),
        "flow": state_flow(version, "lifecycle_state", options, VERSION_FLOW),
        "instances": instances,
        "can_operate": can(request, *OPERATOR),
        "can_transition": can(request, Role.OPERATOR, Role.APPROVER),
        "harness": harness_snippet(request, version),
    }


def harness_snippet(request, version: AgentVersion) -> dict:
    """The full endpoint URL and a curl command an evaluation harness can start from."""
    url = request.build_absolute_uri(reverse("version-evaluations", args=[version.pk]))
    body = {
        "suite": "regression",
        "status": "PASS",
        "score": 0.93,
        "details": {"notes": "all checks green", "run_url": "https://ci.example.com/runs/42"},
    }
    curl = (
        f'curl -s -X POST "{url}" \\\n'
        '  -H "Authorization: Bearer $ARM_API_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{json.dumps(body, indent=2)}'"
    )
    return {"url": url, "curl": curl}


def _version(request, pk):
    return scoped_get(AgentVersion.objects.select_related("template", "parent", "tenant"), request.arm_tenant, pk)


@tenant_page()
def version_detail(request, pk):
    """htmx: the drawer. Plain GET: the same content as a page (shareable link)."""
    version = _version(request, pk)
    context = version_context(request, version)
    if request.htmx:
        return render(request, "registry/_version_drawer.html", context)
    return render(request, "registry/version_page.html", context)


@tenant_page(roles=(Role.OPERATOR, Role.APPROVER))
@require_POST
def version_transition(request, pk):
    version = _version(request, pk)
    to = request.POST.get("to", "")
    reason = request.POST.get("reason", "")[:500]
    previous = version.lifecycle_state
    try:
        version = services.version_transition(version=version, to=to, actor=request.arm_actor, reason=reason)
    except (DomainError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"{version} moved from {previous} to {version.lifecycle_state}.")
    if not request.htmx:
        return redirect("ui:version_detail", pk=pk)
    version = _version(request, pk)
    response = render(
        request, "registry/_version_drawer.html", {**version_context(request, version), "oob_toasts": True}
    )
    return htmx_event(response, "arm:refresh")


@tenant_page(roles=OPERATOR)
def version_evaluation(request, pk):
    """The "Record evaluation" modal of the drawer: what a harness posts to the API, typed by a person.
    Saved: the modal closes and the drawer re-renders (eval chip, results, transitions now possible)."""
    version = _version(request, pk)
    form = EvaluationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            result = services.evaluation_record(
                version=version,
                suite=d["suite"],
                status=d["status"],
                score=d.get("score"),
                details=form.details_data(),
                actor=request.arm_actor,
            )
        except (ValidationError, DomainError) as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(
                request, f"{version}: {result.suite} {result.status} recorded; eval status is now {result.status}."
            )
            if not request.htmx:
                return redirect("ui:version_detail", pk=pk)
            version = _version(request, pk)
            context = {**version_context(request, version), "oob_toasts": True, "close_modal": True}
            response = render(request, "registry/_version_drawer.html", context)
            # The form lives in the modal; the answer is the drawer (the modal is emptied out of band).
            return htmx_event(reswap(retarget(response, "#drawer-root"), "innerHTML"), "arm:refresh")
    return _modal(
        request,
        "registry/_evaluation_form.html",
        {
            "form": form,
            "version": version,
            "retired": version.lifecycle_state == VersionState.RETIRED,
            "action": reverse("ui:version_evaluation", args=[version.pk]),
            "title": f"Record evaluation · {version}",
        },
        page_title=f"Record evaluation · {version}",
    )


# ---------------------------------------------------------------- instance drawer


def _instance(request, pk):
    return scoped_get(
        AgentInstance.objects.select_related("version__template", "environment", "provider"), request.arm_tenant, pk
    )


def instance_context(request, instance: AgentInstance) -> dict:
    options = lifecycle_options(instance, "state", request.arm_actor)
    history = object_history(instance)
    prime_actors(request, [instance.created_by], (r.actor for r in history))
    return {
        "instance": instance,
        "health": instance.health(timezone.now(), request.arm_tenant.heartbeat_window_seconds),
        "options": options,
        "flow": state_flow(instance, "state", options, INSTANCE_FLOW),
        "history": history,
        "can_transition": can(request, Role.OPERATOR, Role.APPROVER),
    }


@tenant_page()
def instance_detail(request, pk):
    instance = _instance(request, pk)
    context = instance_context(request, instance)
    if request.htmx:
        return render(request, "registry/_instance_drawer.html", context)
    return render(request, "registry/instance_page.html", context)


@tenant_page(roles=(Role.OPERATOR, Role.APPROVER))
@require_POST
def instance_transition(request, pk):
    instance = _instance(request, pk)
    to = request.POST.get("to", "")
    previous = instance.state
    try:
        instance = services.instance_transition(
            instance=instance, to=to, actor=request.arm_actor, reason=request.POST.get("reason", "")[:500]
        )
    except (DomainError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"{instance} moved from {previous} to {instance.state}.")
    if not request.htmx:
        return redirect("ui:instance_detail", pk=pk)
    instance = _instance(request, pk)
    response = render(
        request, "registry/_instance_drawer.html", {**instance_context(request, instance), "oob_toasts": True}
    )
    return htmx_event(response, "arm:refresh")


# ---------------------------------------------------------------- modals


def _modal(request, template_name: str, context: dict, *, page_title: str):
    """htmx: the modal alone; plain request: the same form on a page."""
    if request.htmx:
        return render(request, template_name, context)
    return render(
        request, "registry/form_page.html", {**context, "form_template": template_name, "page_title": page_title}
    )


def _saved(request, url: str, message: str) -> HttpResponse:
    messages.success(request, message)
    if request.htmx:
        response = render(request, "partials/modal_closed.html", {"oob_toasts": True})
        return htmx_event(response, "arm:refresh")
    return redirect(url)


@dataclass(frozen=True)
class FormModal:
    """The New and Edit modals of one kind of object: its form, its create, update and check services
    (keyword ``noun`` names the object, as in ``template_update(template=…)``), its modal template, the
    page a save refreshes and what it says. A submit shows every error at once (``arm.forms.submit``):
    the form's, and the model's about the fields the form could read."""

    model: type
    form: type
    noun: str
    template_name: str
    create: Callable
    update: Callable
    check: Callable
    done: tuple[str, ...]  # the view name (and arguments) a save leads to
    created: Callable[[Any], str]
    saved: Callable[[Any], str]
    context: Callable[[Any, Any], dict] = lambda request, obj: {}
    on_error: Callable = apply_service_errors
    # What a create answers instead of closing the modal with ``created``'s toast (a secret shown once).
    respond_created: Callable[[Any, Any], HttpResponse] | None = None

    def new(self, request):
        return self._page(request, None)

    def edit(self, request, pk):
        return self._page(request, scoped_get(self.model.objects, request.arm_tenant, pk))

    def _page(self, request, obj):
        form = self.form(request.POST or None, initial=self.form.initial_for(obj) if obj is not None else None)
        if request.method == "POST":
            tenant, actor = request.arm_tenant, request.arm_actor
            save = functools.partial(self._save, obj=obj, tenant=tenant, actor=actor)
            check = functools.partial(self._check, obj=obj, tenant=tenant)
            saved = submit(form, save, check, on_error=self.on_error)
            if saved is not None:
                if obj is None and self.respond_created is not None:
                    return self.respond_created(request, saved)
                message = self.created(saved) if obj is None else self.saved(saved)
                return _saved(request, reverse(self.done[0], args=self.done[1:]), message)
        title = f"New {self.noun}" if obj is None else f"Edit {self.noun} {obj.name}"
        context = {"form": form, "obj": obj, "action": request.path, "title": title, **self.context(request, obj)}
        return _modal(request, self.template_name, context, page_title=title)

    def _save(self, data: dict, *, obj, tenant, actor):
        if obj is None:
            return self.create(tenant=tenant, actor=actor, **data)
        return self.update(**{self.noun: obj}, actor=actor, **data)

    def _check(self, data: dict, *, obj, tenant) -> None:
        self.check(tenant=tenant, **{self.noun: obj}, **data)


TEMPLATES = FormModal(
    model=AgentTemplate,
    form=TemplateForm,
    noun="template",
    template_name="registry/_template_form.html",
    create=services.template_create,
    update=services.template_update,
    check=services.template_check,
    done=("ui:directory_tab", "templates"),
    created=lambda t: format_html(
        # The toast offers the next step: the New version modal, this template chosen (a link without JS).
        'Template {} created. <a href="{}" class="btn btn-sm mt-2 no-underline" hx-get="{}" hx-target="#modal-root" '
        'data-dismiss-toast data-testid="toast-add-version">Add its first version</a>',
        t.name,
        f"{reverse('ui:version_create')}?template={t.pk}",
        f"{reverse('ui:version_create')}?template={t.pk}",
    ),
    saved=lambda t: f"Template {t.name} saved.",
)


@tenant_page(roles=OPERATOR)
def template_create(request):
    return TEMPLATES.new(request)


@tenant_page(roles=OPERATOR)
def template_edit(request, pk):
    return TEMPLATES.edit(request, pk)


@tenant_page(roles=OPERATOR)
def version_create(request):
    tenant = request.arm_tenant
    initial = {}
    template_id = request.GET.get("template")
    parent_id = request.GET.get("parent")
    if template_id:
        initial["template"] = template_id
    if parent_id:
        parent = AgentVersion.objects.filter(tenant=tenant, pk=parent_id).first() if as_uuid(parent_id) else None
        if parent is not None:
            initial.update(_initial_from_parent(parent))
            template_id = str(parent.template_id)
    form = VersionForm(request.POST or None, tenant=tenant, template_id=template_id, initial=initial)
    if request.method == "POST" and form.is_valid() and form.genome is not None:
        try:
            version = services.version_create(
                tenant=tenant,
                template=form.cleaned_data["template"],
                version_label=form.cleaned_data["version_label"],
                genome=form.genome,
                parent=form.cleaned_data.get("parent"),
                actor=request.arm_actor,
            )
        except ValidationError as exc:
            _version_errors(form, exc)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Version {version} created; genome hash {version.genome_hash[:12]}…")
            context = {"version": version, "oob_toasts": True}
            if request.htmx:
                return htmx_event(render(request, "registry/_version_created.html", context), "arm:refresh")
            return render(
                request,
                "registry/form_page.html",
                {**context, "form_template": "registry/_version_created.html", "page_title": "Version created"},
            )
    return _modal(
        request,
        "registry/_version_form.html",
        {"form": form, "action": reverse("ui:version_create"), "risks": Risk.values},
        page_title="New version",
    )


def _initial_from_parent(parent: AgentVersion) -> dict:
    """Start a child version from its parent's genome, so an operator edits only what changes."""
    import json

    initial = {"template": str(parent.template_id), "parent": str(parent.pk)}
    if genome_problem(parent.genome):
        return initial  # an unreadable genome is not copied into the form
    genome = parent.genome
    model = genome.get("model_config") or {}
    provenance = genome.get("provenance") or {}
    return {
        **initial,
        "model_provider": model.get("provider", ""),
        "model_name": model.get("name", ""),
        "model_parameters": json.dumps(model.get("parameters", {}), indent=2),
        "prompt_bundle_hash": genome.get("prompt_bundle_hash", ""),
        "provenance_source": provenance.get("source", ""),
        "provenance_commit": provenance.get("commit", ""),
        "provenance_built_by": provenance.get("built_by", ""),
        "genome_json": json.dumps(genome, indent=2),
        "tool_rows": [
            {
                "name": t.get("name", ""),
                "version": t.get("version", ""),
                "risk": t.get("risk", Risk.MEDIUM),
                "scopes": ", ".join(t.get("data_scopes", [])),
            }
            for t in genome.get("tool_manifest", [])
            if isinstance(t, dict)
        ],
    }


def _version_errors(form: VersionForm, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for field, errors in exc.message_dict.items():
        for message in errors:
            if field == "genome":
                form.add_error(form.genome_error_field(message), form.genome_error_message(message))
            else:
                form.add_error(field_for_error(form, field, message), message)


@tenant_page(roles=OPERATOR)
def version_parent_options(request):
    """The parent <option>s for the chosen template (htmx swap inside the Create Version modal)."""
    template_id = request.GET.get("template") or None
    choices = parent_choices(request.arm_tenant, template_id if as_uuid(template_id) else None)
    return render(request, "registry/_parent_options.html", {"parents": choices})


@tenant_page(roles=OPERATOR)
def instance_version_options(request):
    """htmx, search as you type in the New-instance modal: the version <option>s matching
    ``?version_search=`` (at most ``VERSION_CHOICES_LIMIT``, newest first), the chosen ``?version=`` kept."""
    chosen_id = as_uuid(request.GET.get("version"))
    chosen = (
        scoped(AgentVersion.objects, request.arm_tenant).select_related("template").filter(pk=chosen_id).first()
        if chosen_id
        else None
    )
    options, more = version_options(request.arm_tenant, request.GET.get("version_search", ""), chosen)
    return render(
        request,
        "registry/_version_options.html",
        {"options": options, "more": more, "chosen": chosen, "limit": VERSION_CHOICES_LIMIT},
    )


def instance_create_page(request, form_class=InstanceForm, create=services.instance_create):
    """The New instance modal, ``form_class`` writing through ``create``. ``ui:instance_create`` is
    ``policies.views.instance_create``: its form adds the policy the instance starts under (the binding is
    policies'), and its ``create`` writes it."""
    tenant = request.arm_tenant
    data = request.POST if request.method == "POST" else None
    initial = {"version": request.GET.get("version")} if request.GET.get("version") else {}
    if request.method == "GET" and request.GET.get("refresh"):
        # The version select changed: re-render keeping what was typed, with that version's environments.
        keep = ("version", "version_search", "environment", "provider", "policy", "name")
        initial = {k: request.GET.get(k) for k in keep}
    form = form_class(data, tenant=tenant, initial=initial)
    if request.method == "POST":
        instance = submit(form, lambda d: create(tenant=tenant, actor=request.arm_actor, **d))
        if instance is not None:
            return _saved(
                request,
                reverse("ui:directory_tab", args=["instances"]),
                f"Instance {instance} created in {instance.environment.name} (PROVISIONING).",
            )
    return _modal(
        request,
        "registry/_instance_form.html",
        {"form": form, "action": reverse("ui:instance_create"), "version_limit": VERSION_CHOICES_LIMIT},
        page_title="New instance",
    )


# ---------------------------------------------------------------- evaluations and federation


@tenant_page()
def evaluations(request):
    """Evaluation results per version, newest first, filtered by the API's ``EvaluationFilterSet``
    (status, suite, search on suite / version label / template name)."""
    base = scoped(EvaluationResult.objects, request.arm_tenant).select_related("version__template")
    filterset = EvaluationFilterSet(non_empty(request.GET), queryset=base, request=request)
    qs = filterset.qs if filterset.is_valid() else base.none()
    page = paginate(request, qs.order_by("-created_at", "-pk"))
    summary = scoped(AgentVersion.objects, request.arm_tenant).aggregate(
        passing=Count("id", filter=Q(eval_status=EvalStatus.PASS)),
        failing=Count("id", filter=Q(eval_status=EvalStatus.FAIL)),
        pending=Count("id", filter=Q(eval_status=EvalStatus.PENDING)),
    )
    return render(
        request,
        "registry/evaluations.html",
        {"page": page, "rows": list(page.object_list), "summary": summary, "filters": request.GET},
    )


def federation_context(request) -> dict:
    providers = list(
        scoped(Provider.objects, request.arm_tenant)
        .annotate(
            instance_count=Count("instances", distinct=True),
            live_count=Count("instances", filter=~Q(instances__state=InstanceState.RETIRED), distinct=True),
        )
        .order_by("type", "name")
    )
    environments = list(
        scoped(Environment.objects, request.arm_tenant)
        .annotate(
            instance_count=Count("instances", distinct=True),
            live_count=Count("instances", filter=~Q(instances__state=InstanceState.RETIRED), distinct=True),
        )
        .order_by("tier", "name")
    )
    gates = {tier: text for tier, _, text in TIER_GATES}
    for env in environments:
        env.gate = gates.get(env.tier, "")
    return {
        "providers": providers,
        "environments": environments,
        "tiers": EnvironmentTier,
        "tier_gates": TIER_GATES,
        "can_operate": can(request, *OPERATOR),
    }


@tenant_page()
def federation(request):
    context = federation_context(request)
    if request.htmx and request.htmx.target == "federation-body":
        return render(request, "registry/_federation_body.html", context)
    return render(request, "registry/federation.html", context)


PROVIDERS = FormModal(
    model=Provider,
    form=ProviderForm,
    noun="provider",
    template_name="registry/_provider_form.html",
    create=services.provider_create,
    update=services.provider_update,
    check=services.provider_check,
    done=("ui:federation",),
    created=lambda p: f"Provider {p.name} ({p.type}) created.",
    saved=lambda p: f"Provider {p.name} saved.",
)


@tenant_page(roles=OPERATOR)
def provider_create(request):
    return PROVIDERS.new(request)


@tenant_page(roles=OPERATOR)
def provider_edit(request, pk):
    return PROVIDERS.edit(request, pk)


def _environment_errors(form, exc) -> None:
    # A tier change refused by the deployment gate belongs next to the tier.
    if isinstance(exc, DomainError) and exc.code == "deployment_gate":
        form.add_error("tier", exc.message)
    else:
        apply_service_errors(form, exc)


def _environment_context(request, env) -> dict:
    """The tier gates, and for an edit how many live instances a tier change must still admit."""
    live = env.instances.exclude(state=InstanceState.RETIRED).count() if env is not None else None
    return {"gates": TIER_GATES, "live_count": live}


ENVIRONMENTS = FormModal(
    model=Environment,
    form=EnvironmentForm,
    noun="environment",
    template_name="registry/_environment_form.html",
    create=services.environment_create,
    update=services.environment_update,
    check=services.environment_check,
    done=("ui:federation",),
    created=lambda e: f"Environment {e.name} ({e.tier}) created.",
    saved=lambda e: f"Environment {e.name} saved.",
    context=_environment_context,
    on_error=_environment_errors,
)


@tenant_page(roles=OPERATOR)
def environment_create(request):
    return ENVIRONMENTS.new(request)


@tenant_page(roles=OPERATOR)
def environment_edit(request, pk):
    return ENVIRONMENTS.edit(request, pk)


@tenant_page(roles=(Role.ADMIN,))
def api_keys(request):
    """The API keys page (tenancy's) with the instance a key is bound to: that binding is registry's."""
    return api_keys_page(request, ApiKeyForm, services.api_key_create)
