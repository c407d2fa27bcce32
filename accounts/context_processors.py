"""Tells the base layout which console the signed-in user works in."""
from django.utils.translation import pgettext_lazy

from accounts.permissions import ACTIONS
from accounts.selectors import membership_for, subaccount_membership_for

# The role beside the partner's name in the header, in lower case as the header reads.
ROLE_WORDS = {
    "admin": pgettext_lazy("partner role in the header", "admin"),
    "operator": pgettext_lazy("partner role in the header", "operator"),
    "viewer": pgettext_lazy("partner role in the header", "viewer"),
}


def console(request):
    user = getattr(request, "user", None)
    membership = membership_for(user)
    if membership is not None:
        return {
            "console": "partner",
            "console_partner": membership.partner,
            "console_role": membership.role,
            "console_role_label": ROLE_WORDS.get(membership.role, membership.role),
            "console_can_write": membership.can_write,
            # What the role may do, by action (accounts/permissions.ACTIONS): the pages
            # show a button only to whom its action is allowed.
            "console_may": {action: membership.role in spec.roles
                            for action, spec in ACTIONS.items()},
        }
    sub = subaccount_membership_for(user)
    if sub is not None:
        return {"console": "subaccount", "console_sub_account": sub.sub_account}
    if user is not None and user.is_authenticated and user.is_staff:
        return {"console": "staff"}
    return {"console": None}
