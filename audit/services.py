"""Writing audit rows; every service that changes money, status or permission calls this."""
from typing import Any

from audit.models import AuditLog


def audit_record(
    *,
    actor,
    partner,
    action: str,
    obj: Any,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditLog:
    entry = AuditLog(
        actor=actor if getattr(actor, "pk", None) else None,
        partner=partner,
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        before=before,
        after=after,
        reason=reason,
    )
    entry.save()
    return entry
