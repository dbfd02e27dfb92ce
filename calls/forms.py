from django import forms
from django.utils.translation import gettext_lazy as _


class AcceptablePolicyForm(forms.Form):
    accept = forms.BooleanField(
        label=_("I have read the acceptable use policy and agree to follow it during this call"),
        error_messages={"required": _("Tick the box to agree to the acceptable use policy.")},
    )
