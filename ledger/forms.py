"""UI form for adding a price; the price service decides what is acceptable (and what is taken)."""

from django import forms

from arm.ui import StyledForm
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
