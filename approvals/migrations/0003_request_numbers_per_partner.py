"""Request numbers of each partner's own (approvals/numbers.py): the sequence and number
tables, and every existing request numbered per partner in the order it was submitted."""
import re
import unicodedata

import django.db.models.deletion
from django.db import migrations, models

BATCH = 5000


def _prefix(name):
    # approvals.numbers.request_prefix as it stood when this migration was written.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_name)
    prefix = "".join(w[0] for w in words[:2]) if len(words) >= 2 else (words[0] if words else "P")[:2]
    return prefix.upper()


def number_existing_requests(apps, schema_editor):
    Partner = apps.get_model("accounts", "Partner")
    IssuanceRequest = apps.get_model("coupons", "IssuanceRequest")
    RequestNumber = apps.get_model("approvals", "RequestNumber")
    RequestSequence = apps.get_model("approvals", "RequestSequence")
    for partner in Partner.objects.filter(requests__isnull=False).distinct().iterator():
        prefix = _prefix(partner.name)
        ids = IssuanceRequest.objects.filter(partner=partner).order_by(
            "submitted_at", "pk").values_list("pk", flat=True)
        rows, number = [], 0
        for request_id in ids.iterator(chunk_size=BATCH):
            number += 1
            rows.append(RequestNumber(request_id=request_id, partner=partner, prefix=prefix,
                                      number=number))
            if len(rows) == BATCH:
                RequestNumber.objects.bulk_create(rows)
                rows = []
        RequestNumber.objects.bulk_create(rows)
        RequestSequence.objects.create(partner=partner, prefix=prefix, last_number=number)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_subaccount_trigram_search'),
        ('approvals', '0002_pending_queue'),
        ('coupons', '0005_request_submission_key'),
    ]

    operations = [
        migrations.CreateModel(
            name='RequestSequence',
            fields=[
                ('partner', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='accounts.partner')),
                ('prefix', models.CharField(max_length=6)),
                ('last_number', models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='RequestNumber',
            fields=[
                ('request', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='partner_number', serialize=False, to='coupons.issuancerequest')),
                ('prefix', models.CharField(max_length=6)),
                ('number', models.PositiveIntegerField()),
                ('partner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.partner')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('partner', 'number'), name='request_number_once_per_partner')],
            },
        ),
        migrations.RunPython(number_existing_requests, migrations.RunPython.noop),
    ]
