"""Who voided a coupon and when, beside its reason (the void service writes all three).
Coupons voided before this migration get them from their audit row."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def from_audit(apps, schema_editor):
    Coupon = apps.get_model("coupons", "Coupon")
    AuditLog = apps.get_model("audit", "AuditLog")
    voided = Coupon.objects.filter(status="voided", voided_at__isnull=True)
    for pk in voided.values_list("pk", flat=True).iterator():
        row = (AuditLog.objects.filter(action="coupon.void", object_type="coupons.Coupon",
                                       object_id=str(pk))
               .order_by("-created_at", "-pk").values("created_at", "actor_id").first())
        if row is not None:
            Coupon.objects.filter(pk=pk).update(voided_at=row["created_at"],
                                                voided_by_id=row["actor_id"])


class Migration(migrations.Migration):

    dependencies = [
        ('coupons', '0006_coupon_indexes_without_balance_or_status'),
        ('audit', '0002_append_only_trigger'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='coupon',
            name='voided_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='coupon',
            name='voided_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(from_audit, migrations.RunPython.noop, elidable=True),
    ]
