"""Ledger UI: the tenant's price table at ``/cost/prices/`` (reached from the Cost page). Everyone reads;
compliance (or admin) adds and removes prices through the price services."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from arm.errors import DomainError
from arm.ui import apply_service_errors, can, forbidden, non_empty, scoped, scoped_get, tenant_page
from ledger import services
from ledger.filtersets import PriceFilterSet
from ledger.forms import PriceForm
from ledger.models import Price

WRITE_ROLES = tuple(services.LEDGER_WRITE_ROLES)


@tenant_page(methods=("GET", "POST"))
def prices(request):
    """The price list (filter by provider or model text) and, for compliance, the form to add one."""
    form = PriceForm(request.POST or None)
    if request.method == "POST":
        if not can(request, *WRITE_ROLES):
            return forbidden(request, "Changing prices needs the compliance or admin role.")
        if form.is_valid():
            try:
                price = services.price_create(tenant=request.arm_tenant, actor=request.arm_actor, **form.cleaned_data)
            except (ValidationError, DomainError) as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"Price of {price.provider}/{price.model} from {price.effective_from} added.")
                return redirect("ui:cost_prices")
    params = non_empty(request.GET)
    filterset = PriceFilterSet(params, queryset=scoped(request, Price.objects), request=request)
    rows = list(filterset.qs.order_by("provider", "model", "-effective_from")) if filterset.is_valid() else []
    return render(
        request,
        "ledger/prices.html",
        {"rows": rows, "form": form, "filters": request.GET, "can_edit": can(request, *WRITE_ROLES)},
    )


@tenant_page(WRITE_ROLES)
@require_POST
def price_delete(request, pk):
    price = scoped_get(request, Price.objects, pk)
    try:
        services.price_delete(price=price, actor=request.arm_actor)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Price of {price.provider}/{price.model} from {price.effective_from} removed.")
    return redirect("ui:cost_prices")
