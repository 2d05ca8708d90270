"""The filters of the audit trail's CSV export."""

from __future__ import annotations

from django import forms

from reviewapp.models import AuditAction


class AuditFilterForm(forms.Form):
    """``?user=&action=&target=&since=&until=``; every filter is optional, dates are UTC (ISO 8601)."""

    user = forms.CharField(required=False, max_length=150)
    action = forms.ChoiceField(required=False, choices=[("", "any"), *AuditAction.choices])
    target = forms.CharField(required=False, max_length=200, help_text="e.g. case:12")
    since = forms.DateTimeField(required=False, help_text="From this moment on (inclusive).")
    until = forms.DateTimeField(required=False, help_text="Before this moment.")

    def filters(self) -> dict:
        data = self.cleaned_data
        return {
            "username": data["user"],
            "action": data["action"],
            "target": data["target"],
            "since": data["since"],
            "until": data["until"],
        }
