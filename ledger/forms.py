"""UI forms for adding a price and for a budget's New and Edit modal; the ledger services decide what is
acceptable (and what is taken)."""

from django import forms

from arm.forms import ServiceForm, same
from arm.ui import StyledForm
from ledger.choices import BudgetPeriod, BudgetScope
from ledger.models import MODEL_MAX_LENGTH, PROVIDER_MAX_LENGTH


class PriceForm(StyledForm, forms.Form):
    provider = forms.CharField(max_length=PROVIDER_MAX_LENGTH, help_text="As runtimes report it: openai, anthropic…")
    model = forms.CharField(max_length=MODEL_MAX_LENGTH, help_text="gpt-4.1, claude-sonnet-4-5…")
    input_usd_per_mtok = forms.DecimalField(
        label="Input (USD / million tokens)", min_value=0, max_digits=12, decimal_places=6
    )
    cached_input_usd_per_mtok = forms.DecimalField(
        label="Cached input (USD / million tokens)",
        min_value=0,
        max_digits=12,
        decimal_places=6,
        required=False,
        help_text="Input tokens read from the provider's prompt cache; empty: the input price.",
    )
    output_usd_per_mtok = forms.DecimalField(
        label="Output (USD / million tokens)", min_value=0, max_digits=12, decimal_places=6
    )
    effective_from = forms.DateField(
        label="Effective from (UTC)", widget=forms.DateInput(attrs={"type": "date"}), help_text="YYYY-MM-DD"
    )


class BudgetForm(ServiceForm, StyledForm, forms.Form):
    """A budget as ``budget_create``/``budget_update`` take it. The template is its id, chosen from the
    tenant's templates (the modal lists them); the view resolves it in the tenant."""

    name = forms.CharField(max_length=200)
    scope = forms.ChoiceField(
        choices=BudgetScope.choices, help_text="Whole tenant, one template, or every template with a tag."
    )
    template = forms.UUIDField(required=False, help_text="For a template budget.")
    tag = forms.CharField(required=False, max_length=40, help_text="For a tag budget: a template tag.")
    period = forms.ChoiceField(choices=BudgetPeriod.choices, help_text="A UTC day or a calendar month.")
    amount_usd = forms.DecimalField(label="Amount (USD)", max_digits=14, decimal_places=4)
    thresholds = forms.CharField(
        initial="50, 80, 100", help_text="Alert thresholds in percent of the amount, comma-separated."
    )

    @classmethod
    def initial_for(cls, budget) -> dict:
        return {
            "name": budget.name,
            "scope": budget.scope,
            "template": budget.template_id,
            "tag": budget.tag,
            "period": budget.period,
            "amount_usd": budget.amount_usd,
            "thresholds": ", ".join(str(t) for t in budget.thresholds),
        }

    def clean_thresholds(self):
        parts = [p.strip() for p in self.cleaned_data["thresholds"].split(",") if p.strip()]
        try:
            return [int(p) for p in parts]
        except ValueError:
            raise forms.ValidationError("Whole percentages separated by commas, e.g. 50, 80, 100.") from None

    service_fields = {
        "name": str.strip,
        "scope": same,
        "template": same,
        "tag": str.strip,
        "period": same,
        "amount_usd": same,
        "thresholds": same,
    }
