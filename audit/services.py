"""Writing audit rows; every service that changes money, status or permission calls this."""
from collections.abc import Iterable
from typing import Any

from audit.models import AuditLog
from couponplatform.logs import current_request_id


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
        request_id=current_request_id(),
    )
    entry.save()
    return entry


def audit_record_many(
    *,
    actor,
    action: str,
    entries: Iterable[tuple[int | None, Any, dict | None, dict | None]],
    reason: str = "",
) -> list[AuditLog]:
    """`audit_record` for many objects in one insert: entries of (partner id, object,
    before, after), all by `actor` doing `action`."""
    request_id = current_request_id()
    rows = [
        AuditLog(
            actor=actor if getattr(actor, "pk", None) else None, partner_id=partner_id,
            action=action, object_type=obj._meta.label, object_id=str(obj.pk),
            before=before, after=after, reason=reason, request_id=request_id,
        )
        for partner_id, obj, before, after in entries
    ]
    return AuditLog.objects.bulk_create(rows, batch_size=1000)
