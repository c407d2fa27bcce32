"""Request numbers of each partner's own (approvals/numbers.py): a sequence per partner,
shown as PREFIX-000123; two submits at once never share a number (the sequence's row lock,
and unique (partner, number) behind it); existing requests numbered by the migration."""
import time

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from approvals import numbers
from approvals.models import RequestNumber, RequestSequence
from coupons.models import IssuanceRequest
from coupons.services import issuance_request_submit
from tests import factories as f
from tests.coupons.test_race import run_at_once, submitter, summary

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("name", "prefix"), [
    ("Northwind Distribution", "ND"), ("Bluebird", "BL"), ("été Ünion Cloud", "EU"),
    ("云 合作伙伴", "P"), ("a", "A"), ("9 Lives Ltd", "9L"),
])
def test_a_partners_prefix_is_made_from_its_name(name, prefix):
    assert numbers.request_prefix(name) == prefix


def test_each_partner_numbers_its_own_requests_from_1(dist_admin, distributor, customers):
    other = f.make_partner(name="Quiet Partners")
    other_admin = f.make_member(other, "admin")
    mine = f.make_template(distributor, dist_admin, issue_limit="unlimited")
    theirs = f.make_template(other, other_admin, issue_limit="unlimited")
    first = f.submit(mine, dist_admin, customers[:1])
    f.submit(theirs, other_admin, f.make_accounts(other, 1))
    second = f.submit(mine, dist_admin, customers[1:2])
    assert (first.number, second.number) == ("DO-000001", "DO-000002")
    assert IssuanceRequest.objects.get(partner=other).number == "QP-000001"
    assert RequestSequence.objects.get(partner=distributor).last_number == 2


def test_the_partner_sees_its_number_and_the_admin_both(
    client, dist_admin, distributor, customers, bd,
):
    f.submit(f.make_template(distributor, dist_admin), dist_admin, customers[:1])
    # Requests of another partner took the platform's ids before this one.
    other = f.make_partner(name="Quiet Partners")
    other_admin = f.make_member(other, "admin")
    f.submit(f.make_template(other, other_admin), other_admin, f.make_accounts(other, 3)[:3])
    request = f.submit(f.make_template(distributor, dist_admin), dist_admin, customers[1:2])
    assert request.number == "DO-000002" and request.pk > 2
    client.force_login(dist_admin)
    listing = client.get(reverse("approvals:list")).content.decode()
    assert ">DO-000002</a>" in listing and ">DO-000001</a>" in listing
    detail = client.get(request.get_absolute_url()).content.decode()
    assert "Request DO-000002" in detail and f"#{request.pk}" not in detail
    client.force_login(bd)
    admin_list = client.get(reverse("admin:approvals_pendingrequest_changelist")).content.decode()
    assert "DO-000002" in admin_list and f'/{request.pk}/change/' in admin_list
    admin_page = client.get(
        reverse("admin:coupons_issuancerequest_change", args=[request.pk]),
    ).content.decode()
    assert f"Request DO-000002 (#{request.pk})" in admin_page


@pytest.mark.race
@pytest.mark.django_db(transaction=True)
def test_16_submits_at_once_get_16_numbers_in_a_row(postgres_only, monkeypatch):
    """The partner's first requests, all at once: the sequence row is made by one of them and
    locked by each in turn. Each submit holds the counter it read for 50 ms, so without the
    lock every one of them reads the same number (and the unique constraint fails 15)."""
    partner = f.make_partner(name="Northwind Distribution")
    user = f.make_member(partner, "operator")
    accounts = f.make_accounts(partner, 16)
    template = f.make_template(partner, user, issue_limit="unlimited")

    def hold(point):
        if point == "sequence_read":
            time.sleep(0.05)

    monkeypatch.setattr(numbers, "_pause", hold)
    results = run_at_once(
        16, submitter(template.pk, user.pk),
        lambda i, prepared: issuance_request_submit(
            template=prepared[0], acting_user=prepared[1], account_ids=[accounts[i].account_id],
        ).pk,
    )
    assert summary(results) == {"ok": 16}, results
    assigned = sorted(RequestNumber.objects.filter(partner=partner).values_list("number",
                                                                                flat=True))
    assert assigned == list(range(1, 17))
    assert RequestSequence.objects.get(partner=partner).last_number == 16


def test_the_migration_numbers_existing_requests_per_partner_in_submit_order(
    distributor, dist_admin, customers,
):
    executor = MigrationExecutor(connection)
    executor.migrate([("approvals", "0002_pending_queue")])
    other = f.make_partner(name="Quiet Partners")
    template = f.make_template(distributor, dist_admin)
    made = []
    for partner in (distributor, other, distributor, distributor):
        made.append(IssuanceRequest.objects.create(
            partner=partner, template=template, route="bd", cost_bearer="partner",
            currency="USD", unit_value=1, recipient_count=1, total_amount=1,
            submitted_by=dist_admin,
        ).pk)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    labels = [IssuanceRequest.objects.get(pk=pk).number for pk in made]
    assert labels == ["DO-000001", "QP-000001", "DO-000002", "DO-000003"]
    assert RequestSequence.objects.get(partner=distributor).last_number == 3
    # New requests go on from there.
    assert f.submit(template, dist_admin, customers[:1]).number == "DO-000004"
