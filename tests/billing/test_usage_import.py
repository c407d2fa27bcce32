"""Usage import: a whole file or nothing, every bad line named with its reason."""
import io
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.daily_bills import daily_bills_make
from billing.models import UsageImport, UsageRecord
from billing.month_close import month_close
from billing.usage_import import UsageImportError, usage_import
from tests import factories as f
from tests.billing.helpers import D, products
from tests.factories import import_usage, usage_csv


@pytest.fixture
def catalog(db):
    return products("ecs", "oss")


@pytest.fixture
def accounts(distributor, catalog):
    usd = f.make_accounts(distributor, 2, prefix="IMP-")
    eur = f.make_accounts(distributor, 1, prefix="EUR-", currency="EUR")
    return usd + eur


def refused(text: str) -> UsageImportError:
    with pytest.raises(UsageImportError) as info:
        usage_import(file=io.BytesIO(text.encode()), file_name="bad.csv")
    assert UsageRecord.objects.count() == 0 and UsageImport.objects.count() == 0
    return info.value


def test_a_good_file_is_imported_whole(accounts):
    a, b, _ = accounts
    batch = import_usage([(a, "2025-03-01", "ecs", "1.50"), (b, "2025-03-01", "oss", "0"),
                          (a, "2025-03-02", "ecs", "1,000.25")])
    assert batch.record_count == 3
    assert sorted(UsageRecord.objects.values_list("sub_account__account_id", "usage_date",
                                                  "product__code", "amount", "currency")) == [
        (a.account_id, date(2025, 3, 1), "ecs", D("1.50"), "USD"),
        (a.account_id, date(2025, 3, 2), "ecs", D("1000.25"), "USD"),
        (b.account_id, date(2025, 3, 1), "oss", D("0.00"), "USD"),
    ]


def test_every_bad_row_is_named_by_line_and_nothing_is_written(accounts):
    a, _, eur = accounts
    text = "\n".join([
        "account_id,date,product_code,amount,currency",
        f"{a.account_id},2025-03-01,ecs,1.00,USD",        # 2 good
        "NOPE-1,2025-03-01,ecs,1.00,",                     # 3 unknown account
        f"{a.account_id},2025-02-30,ecs,1.00,",            # 4 no such day
        f"{a.account_id},2025-03-01,nosuch,1.00,",         # 5 unknown product
        f"{a.account_id},2025-03-01,ecs,-1.00,",           # 6 negative
        f"{a.account_id},2025-03-01,ecs,1.005,",           # 7 three places
        f"{a.account_id},2025-03-01,ecs,NaN,",             # 8 not a number
        f"{a.account_id},2025-03-01,ecs,abc,",             # 9 not a number
        f"{eur.account_id},2025-03-01,ecs,1.00,USD",       # 10 currency of another account
        f"{a.account_id},2025-03-01,ecs",                  # 11 a column short
        "",                                                # 12 blank: skipped
        f"{a.account_id},2025-03-01,ecs,1e20,",            # 13 too large
        ",2025-03-01,,1.00,",                              # 14 empty ids
    ]) + "\n"
    error = refused(text)
    lines = {line for line, _ in error.errors}
    assert lines == {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14}
    why = dict(error.errors)
    assert "unknown account ID 'NOPE-1'" in why[3]
    assert "not YYYY-MM-DD" in why[4]
    assert "unknown product code 'nosuch'" in why[5]
    assert "negative" in why[6]
    assert "more than 2 decimal places" in why[7]
    assert "not a number" in why[8] and "not a number" in why[9]
    assert "not the account's currency EUR" in why[10]
    assert "expected 5 columns, found 3" in why[11]
    assert "too large" in why[13]
    assert error.message.startswith("Nothing was imported: 11 bad rows. Line 3:")


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("account_id,date,amount\nX,2025-01-01,1\n", "missing column: product_code"),
    ("account_id,date,product_code,amount\n", "no usage rows"),
])
def test_a_file_without_usable_columns_or_rows_is_refused(accounts, text, reason):
    error = refused(text)
    assert error.errors[0][0] == 1 and reason in error.errors[0][1]


def test_a_file_that_is_not_utf8_is_refused(accounts):
    with pytest.raises(UsageImportError, match="not UTF-8"):
        usage_import(file=io.BytesIO(b"\xff\xfe\x00bad"), file_name="bad.csv")


def test_the_same_file_twice_is_refused(accounts):
    a = accounts[0]
    rows = [(a, "2025-03-01", "ecs", "1.00")]
    import_usage(rows)
    with pytest.raises(UsageImportError, match="imported already"):
        import_usage(rows)
    assert UsageRecord.objects.count() == 1


def test_usage_for_a_billed_day_is_refused(accounts):
    a, b, _ = accounts
    import_usage([(a, "2025-03-01", "ecs", "1.00")])
    daily_bills_make(bill_date=date(2025, 3, 1), enqueue_posting=False)
    with pytest.raises(UsageImportError) as info:
        import_usage([(b, "2025-03-01", "ecs", "2.00"), (a, "2025-03-01", "oss", "3.00")])
    assert info.value.errors == [
        (3, f"the daily bill of {a.account_id} for 2025-03-01 is already made; its usage can "
            "no longer change"),
    ]
    assert UsageRecord.objects.count() == 1


def test_usage_for_a_closed_month_is_refused(accounts):
    a, b, _ = accounts
    import_usage([(a, "2025-02-10", "ecs", "1.00")])
    daily_bills_make(bill_date=date(2025, 2, 10), enqueue_posting=False)
    from billing.posting import account_post_outstanding

    account_post_outstanding(sub_account_id=a.pk)
    month_close(month="2025-02", today=date(2025, 3, 1))
    with pytest.raises(UsageImportError, match="2025-02 is closed"):
        import_usage([(b, "2025-02-11", "ecs", "2.00")])


def test_the_command_names_each_bad_line_and_exits_non_zero(accounts, tmp_path, capsys):
    a = accounts[0]
    path = tmp_path / "usage.csv"
    path.write_bytes(usage_csv([(a, "2025-03-01", "ecs", "1.00"),
                                ("GHOST", "2025-03-01", "ecs", "1.00")]).getvalue())
    with pytest.raises(CommandError, match="Nothing was imported: 1 bad row"):
        call_command("import_usage", str(path))
    assert "usage.csv:3: unknown account ID 'GHOST'" in capsys.readouterr().err
    assert UsageRecord.objects.count() == 0


def test_the_command_imports_a_good_file(accounts, tmp_path, capsys):
    path = tmp_path / "usage.csv"
    path.write_bytes(usage_csv([(accounts[0], "2025-03-01", "ecs", "1.00")]).getvalue())
    call_command("import_usage", str(path))
    assert "Imported 1 usage record " in capsys.readouterr().out
    assert UsageRecord.objects.count() == 1
