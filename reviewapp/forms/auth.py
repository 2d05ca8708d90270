"""Log-in forms of the log-in page and the Django admin, with log-in throttling."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from reviewapp.services.login_throttle import login_lockout


class ThrottledLoginMixin:
    """Refuses a log-in while its account or client address is locked out, before the password is checked.

    Failures are counted by the ``user_login_failed`` receiver (reviewapp.apps), so every way in counts.
    """

    request: object
    cleaned_data: dict

    def clean(self):
        username = self.cleaned_data.get("username")
        lockout = login_lockout(username=username, request=self.request)
        if lockout is not None:
            raise forms.ValidationError(lockout.message, code="throttled")
        try:
            return super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            # The failure that reaches the limit says so at once.
            lockout = login_lockout(username=username, request=self.request)
            if lockout is not None:
                raise forms.ValidationError(lockout.message, code="throttled") from None
            raise


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    """The log-in page's form."""


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The Django admin's log-in form."""
