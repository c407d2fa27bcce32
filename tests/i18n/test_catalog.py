"""The Chinese catalogs are complete and compiled (QUALITY "Languages", catalog complete).

Every message the code, the templates and the scripts mark, extracted afresh by
makemessages into a temporary folder, has a Chinese translation in the committed
locale/zh_Hans catalogs: none missing, empty or fuzzy, the same placeholders as the English.
The committed .mo files, which `make run` serves without gettext, hold exactly the .po's
messages (compiled here in pure Python with polib): a .po edited without recompiling fails.
"""
import polib
import pytest
from django.utils import translation

from tests.i18n import catalogs
from tests.i18n.catalogs import DOMAINS, key, messages_of, placeholders, problems_of


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_marked_message_has_a_chinese_translation_with_its_placeholders(domain, tmp_path):
    extracted = catalogs.extract(domain, tmp_path)
    assert len(extracted) >= (100 if domain == "django" else 5), "makemessages found too little"
    committed = {key(e): e for e in polib.pofile(str(catalogs.po_path(domain)))
                 if not e.obsolete}
    missing = [f"missing: {e.msgctxt + ' | ' if e.msgctxt else ''}{e.msgid!r}"
               for e in extracted if key(e) not in committed]
    wrong = [problem for e in extracted if key(e) in committed
             for problem in problems_of(committed[key(e)])]
    assert missing + wrong == [], (
        f"{len(missing)} messages missing from and {len(wrong)} wrong in "
        f"locale/zh_Hans/LC_MESSAGES/{domain}.po (`make messages` adds the missing ones)")


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_committed_mo_holds_exactly_the_po_messages(domain, tmp_path):
    po = polib.pofile(str(catalogs.po_path(domain)))
    compiled = tmp_path / f"{domain}.mo"
    po.save_as_mofile(str(compiled))
    expected = messages_of(polib.mofile(str(compiled)))
    committed = messages_of(polib.mofile(str(catalogs.mo_path(domain))))
    stale = sorted(set(expected.items()) ^ set(committed.items()), key=str)
    assert not stale, (f"locale/zh_Hans/LC_MESSAGES/{domain}.mo is stale: run `make messages` "
                       f"(or compilemessages) and commit it; differs in {stale[:5]}")
    assert len(committed) == len(messages_of(po)) > 0


def test_the_placeholder_check_sees_a_dropped_or_renamed_placeholder():
    entry = polib.POEntry(msgid="Request %(number)s for %(n)s account",
                          msgid_plural="Request %(number)s for %(n)s accounts",
                          msgstr_plural={0: "发放申请 %(number)s（%(n)s 个账号）"})
    assert problems_of(entry) == []
    entry.msgstr_plural = {0: "发放申请（%(n)s 个账号）"}
    assert problems_of(entry) and "placeholders" in problems_of(entry)[0]
    assert problems_of(polib.POEntry(msgid="Coupon %(code)s", msgstr="优惠券 %(coupon)s"))
    assert problems_of(polib.POEntry(msgid="Void", msgstr="")) == ["untranslated: 'Void'"]
    fuzzy = polib.POEntry(msgid="Void", msgstr="作废", flags=["fuzzy"])
    assert problems_of(fuzzy) == ["fuzzy: 'Void'"]
    assert placeholders("%(rate)s %% off") == ["%(rate)"]


# The glossary's words (docs: GLOSSARY) where the catalog has the English: one Chinese each.
GLOSSARY = {
    "Channel Platform": "渠道平台",
    "partner console": "伙伴控制台",
    "Coupon Management": "优惠券管理",
    "Templates": "模板",
    "Create template": "创建模板",
    "Issue Coupon": "发放优惠券",
    "Selected Accounts": "已选账号",
    "Approval Status": "审批状态",
    "Coupon Usage": "优惠券使用情况",
    "tier-2 reseller": "二级经销商",
    "Cost bearer": "费用承担方",
    "Issue limit": "发放限制",
    "Face value": "面值",
    "Validity": "有效期",
    "Release cap": "发放上限",
    "Billing Management": "账单管理",
    "Coupon deduction": "优惠券抵扣",
    "Payable": "应付金额",
    "Original": "原价",
    "Export CSV": "导出 CSV",
    "Export XLSX": "导出 XLSX",
    "Log out": "退出",
    "Search": "搜索",
    "Filter": "筛选",
    "Reset": "重置",
    "Confirm": "确认",
    "Cancel": "取消",
    "Approve": "通过",
    "Reject": "驳回",
    "Reason": "原因",
    "Voided": "已作废",
    "Void": "作废",
    "Used": "已使用",
    "Remaining": "剩余",
    "Expired": "已过期",
}


def test_the_catalog_uses_the_glossarys_words():
    with translation.override("zh-hans"):
        wrong = {english: translation.gettext(english) for english, chinese in GLOSSARY.items()
                 if translation.gettext(english) != chinese}
    assert wrong == {}
