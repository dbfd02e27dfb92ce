"""The footer's feedback form (bounded, plain text only)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from establishments.models import Establishment, FeedbackTopic

MESSAGE_MAX_CHARS = 2000


class FeedbackForm(forms.Form):
    topic = forms.ChoiceField(
        label=_("What is your feedback about?"),
        choices=FeedbackTopic.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose what your feedback is about.")},
    )
    message = forms.CharField(
        label=_("Your feedback"),
        help_text=_(
            "Do not include names, prison numbers or other personal details. "
            "Up to 2,000 characters."
        ),
        max_length=MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 6, "maxlength": MESSAGE_MAX_CHARS}),
        error_messages={
            "required": _("Enter your feedback."),
            "max_length": _("Your feedback must be 2,000 characters or fewer."),
        },
    )
    establishment = forms.ModelChoiceField(
        label=_("Prison (optional)"),
        queryset=Establishment.objects.order_by("name"),
        required=False,
        to_field_name="code",
        empty_label=_("Not about one prison"),
        error_messages={"invalid_choice": _("Choose a prison from the list.")},
    )
    reply_to = forms.EmailField(
        label=_("Email address (optional)"),
        help_text=_("Only if you would like a reply."),
        required=False,
        max_length=254,
        error_messages={
            "invalid": _("Enter an email address, like name@example.com."),
            "max_length": _("Your email address must be 254 characters or fewer."),
        },
    )

    def clean_message(self) -> str:
        message = self.cleaned_data["message"].strip()
        # Control characters (other than new lines and tabs) have no place in feedback.
        message = "".join(c for c in message if c in "\n\t" or c.isprintable())
        if not message:
            raise forms.ValidationError(_("Enter your feedback."))
        return message
