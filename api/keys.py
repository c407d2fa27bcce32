"""API keys: made and revoked by a partner admin in the console (or `api_key_create`),
and found again from the bearer token of a request. The secret is shown once and stored
as its sha256; the key acts through a user of its own, whose membership gives the
services the key's rights (docs/API.md, Keys)."""
import hashlib
import hmac
import re
import secrets
import string
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Partner, PartnerMembership
from accounts.permissions import partner_writer_require
from api.models import ApiKey
from audit.services import audit_record
from couponplatform.exceptions import ApplicationError

KEY_RE = re.compile(r"^cpk_(?P<prefix>[a-z0-9]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
NAME_MAX = ApiKey._meta.get_field("name").max_length
# The services see an operator key as a partner admin: voiding, an admin's action in the
# console, is among the API's writes, and only a partner admin makes keys, so a key never
# has more than its maker. A read-only key is a viewer, refused by every service's writer
# rule even if the API's own read-only check were missed.
MEMBERSHIP_ROLE = {
    ApiKey.Role.READ_ONLY: PartnerMembership.Role.VIEWER,
    ApiKey.Role.OPERATOR: PartnerMembership.Role.ADMIN,
}
# last_used_at is written at most this often per key, not on every request.
LAST_USED_EVERY = timedelta(seconds=60)


def secret_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _require_admin(partner: Partner, acting_user) -> None:
    partner_writer_require(
        acting_user, partner, action="api_keys_manage",
        wrong_role=_("Only a partner admin can manage API keys."),
    )


def _snapshot(key: ApiKey) -> dict:
    return {"name": key.name, "role": key.role, "prefix": key.display_prefix,
            "expires_at": key.expires_at, "revoked_at": key.revoked_at,
            "user": key.user_id}


def api_key_create(
    *, partner: Partner, acting_user, name: str, role: str,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key of `partner` and its secret token, which is never stored or shown again."""
    _require_admin(partner, acting_user)
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = _("Enter a name for the key.")
    elif len(name) > NAME_MAX:
        errors["name"] = _("A key's name has at most %(max)s characters.") % {"max": NAME_MAX}
    if role not in ApiKey.Role.values:
        errors["role"] = _("Choose read-only or operator.")
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = _("The expiry must be in the future.")
    if errors:
        raise ApplicationError(" ".join(errors.values()), extra={"errors": errors})
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(12))
    token = f"cpk_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        user = get_user_model()(username=f"apikey-{prefix}", first_name=name[:150],
                                is_active=True)
        user.set_unusable_password()
        user.save()
        PartnerMembership.objects.create(user=user, partner=partner,
                                         role=MEMBERSHIP_ROLE[role])
        key = ApiKey.objects.create(
            partner=partner, user=user, name=name, role=role, prefix=prefix,
            secret_hash=secret_hash(token), created_by=acting_user, expires_at=expires_at,
        )
        audit_record(actor=acting_user, partner=partner, action="api_key.create", obj=key,
                     after=_snapshot(key))
    return key, token


def api_key_revoke(*, key: ApiKey, acting_user) -> ApiKey:
    """Revoke a key at once; its user can no longer act (its requests answer 401)."""
    _require_admin(key.partner, acting_user)
    with transaction.atomic():
        locked = ApiKey.objects.select_for_update().select_related("partner").get(pk=key.pk)
        if locked.revoked_at is not None:
            raise ApplicationError(_("This key is already revoked."))
        before = _snapshot(locked)
        locked.revoked_at = timezone.now()
        locked.revoked_by = acting_user
        locked.save(update_fields=["revoked_at", "revoked_by"])
        get_user_model().objects.filter(pk=locked.user_id).update(is_active=False)
        audit_record(actor=acting_user, partner=locked.partner, action="api_key.revoke",
                     obj=locked, before=before, after=_snapshot(locked))
    return locked


def api_key_for_token(token: str) -> tuple[ApiKey | None, str]:
    """The key a bearer token names, and why it can not be used ("" when it can):
    malformed, unknown, revoked or expired. Reads only."""
    match = KEY_RE.match(token or "")
    if not match:
        return None, "malformed"
    key = (ApiKey.objects.select_related("partner", "partner__bd", "user")
           .filter(prefix=match["prefix"]).first())
    # A compare that takes the same time wherever the hashes differ.
    if key is None or not hmac.compare_digest(key.secret_hash, secret_hash(token)):
        return None, "unknown"
    if key.revoked_at is not None or not key.user.is_active:
        return key, "revoked"
    if key.is_expired():
        return key, "expired"
    return key, ""


def api_key_touch(key: ApiKey) -> None:
    """Record that the key was used, at most once a minute (one conditional UPDATE)."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_EVERY:
        return
    ApiKey.objects.filter(pk=key.pk).exclude(last_used_at__gt=now - LAST_USED_EVERY).update(
        last_used_at=now)
    key.last_used_at = now
