from django import forms


class AcceptablePolicyForm(forms.Form):
    accept = forms.BooleanField(
        label="I have read the acceptable use policy and agree to follow it during this call",
        error_messages={"required": "Tick the box to agree to the acceptable use policy."},
    )
