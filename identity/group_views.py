"""The visitor's group page (/me/group/): other adults they bring on their calls, and
invitations from others. Thin: the form checks shape, identity.group writes."""

from __future__ import annotations

from allauth.account.decorators import verified_email_required
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from identity import group, selectors


class GroupInviteForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        label=gettext_lazy("Their email address"),
        help_text=gettext_lazy(
            "The address they sign in with. They need their own account, approved by the "
            "prison, and their own approved connection to the person you call."
        ),
    )


class GroupChoiceForm(forms.Form):
    item = forms.IntegerField(min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)


ACTIONS = ("invite", "remove", "accept", "leave")


@verified_email_required
@require_http_methods(["GET", "POST"])
def me_group(request: HttpRequest) -> HttpResponse:
    profile = selectors.profile_for(request.user)
    if profile is None:
        return redirect("me_profile")
    action = request.POST.get("action", "") if request.method == "POST" else ""
    invite = GroupInviteForm(request.POST if action == "invite" else None)
    status = 200
    refusal = ""
    if request.method == "POST":
        try:
            if action == "invite":
                if invite.is_valid():
                    email = invite.cleaned_data["email"]
                    group.group_member_invite(lead=profile, email=email)
                    messages.success(request, _(group.INVITED_MESSAGE).format(email=email))
                    return redirect("me_group")
            elif action in ACTIONS:
                choice = GroupChoiceForm(request.POST)
                if not choice.is_valid():
                    raise group.GroupError("BAD_CHOICE", _("Choose someone from the list."))
                item = choice.cleaned_data["item"]
                if action == "remove":
                    group.group_member_remove(lead=profile, group_member_id=item)
                    messages.success(request, _("They are no longer in your group."))
                elif action == "accept":
                    group.group_member_accept(member=profile, invitation_id=item)
                    messages.success(
                        request, _("You are in their group: they can add you to their calls.")
                    )
                else:
                    group.group_member_leave(member=profile, invitation_id=item)
                    messages.success(request, _("You are not in their group."))
                return redirect("me_group")
            else:
                raise group.GroupError("BAD_CHOICE", _("Choose what to do from the page."))
        except group.GroupError as error:
            refusal = error.message
        status = 400
    return render(
        request,
        "identity/group.html",
        {
            "profile": profile,
            "form": invite,
            "refusal": refusal,
            "members": list(group.group_of(profile)),
            "memberships": list(group.group_memberships(profile)),
            "max_members": group.MAX_GROUP_MEMBERS,
        },
        status=status,
    )
