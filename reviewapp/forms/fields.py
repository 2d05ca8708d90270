"""Form fields shared by the forms: ids that stay within the database's integer range."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from reviewapp.inputs import ID_MAX, parse_int


class IdsField(forms.ModelMultipleChoiceField):
    """``ModelMultipleChoiceField`` whose ids must be integers a 64-bit id can hold; another value is a field
    error (Django's own field would hand a too-large number to the database driver, an ``OverflowError``)."""

    def _check_values(self, value):
        for pk in value:
            if parse_int(pk, min_value=-ID_MAX, max_value=ID_MAX) is None:
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)
