"""A case's review state across runs, through the match and resolve stages on in-memory adapters.

A reviewer signs off one difference (D01): a re-run that finds another one under the same case id reopens
it, flags it and audits it; a reviewed case the re-run no longer finds is kept closed, audited. A later
run's case that explains an earlier run's case closes it when it is still open (D02, a late payout)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recon.domain import CaseLink, CaseStatus, CaseType, Project, Transaction
from recon.pipeline.projects import run_id_for
from recon.pipeline.services import Services
from recon.reporting.notices import content_fingerprint

from .conftest import DAY, memory_services, notifying_settings, txn
from .test_carry_over import _deliver as deliver
from .test_carry_over import _run_day as run_day
from .test_notifications import _mails as sent_mails
from .test_notifications import _run_day as run_notified
from .test_notifications import _ticking
from .test_pipeline_in_memory import PROJECT_TEXT, _upload
from .test_settlement_lags import WECHAT_MEMO
from .test_settlement_review import credit, project, sale

D1, D2, D3 = (DAY + timedelta(days=k) for k in range(3))
RUN1 = run_id_for("demo", D1)


def _services(p: Project) -> Services:
    return memory_services("demo", p, clock=lambda: datetime(2026, 11, 25, 1, 30, tzinfo=UTC))


def notified_day() -> Services:
    """The demo day's files uploaded, with e-mail and alerts configured."""
    svc = memory_services("demo", PROJECT_TEXT, settings=notifying_settings(), clock=_ticking())
    _upload(svc, Project.from_yaml(PROJECT_TEXT))
    return svc


def _keyed_only() -> Project:
    p = project([1])
    return p.model_copy(update={"match_rules": [r for r in p.match_rules if r.name == "erp-channel-order"]})


def _day_with_wechat(svc: Services, wechat_amount: int) -> None:
    """ERP SO1 199.00 and SO2 50.00; WeChat Pay collected ``wechat_amount`` for SO1 and 50.00 for SO2."""
    erp, wechat = sale("1", 19900, D1)
    erp2, wechat2 = sale("2", 5000, D1)
    deliver(svc, D1, "erp", [erp, erp2])
    deliver(svc, D1, "wechat-main", [wechat.model_copy(update={"amount_minor": wechat_amount}), wechat2])


def _status(svc: Services, case_id: str) -> CaseStatus | None:
    case = svc.repo.get_case(case_id)
    return case.status if case else None


def _set_status(svc: Services, case_id: str, status: CaseStatus) -> None:
    svc.repo.set_case_status(case_id, status)  # type: ignore[attr-defined]  # what the review API would do


@pytest.mark.parametrize(("corrected", "now"), [(17900, CaseType.AMOUNT_MISMATCH), (19900, None)])
def test_a_rerun_reopens_a_resolved_case_whose_difference_changed(
    corrected: int, now: CaseType | None
) -> None:
    """D01: a reviewer resolved SO1's Δ −10.00; a corrected bill makes it Δ −20.00 (reopened and flagged), or
    the rows now agree (the case is gone: kept closed, not deleted silently). Both are audited."""
    svc = _services(_keyed_only())
    _day_with_wechat(svc, 18900)
    run_day(svc, D1)
    (case,) = svc.repo.list_cases(RUN1)
    assert (case.type, case.delta_minor) == (CaseType.AMOUNT_MISMATCH, -1000)
    _set_status(svc, case.case_id, CaseStatus.RESOLVED)
    run_day(svc, D1)  # the same data: the review holds, nothing is audited
    assert _status(svc, case.case_id) is CaseStatus.RESOLVED
    assert svc.repo.list_audit(case.case_id) == []

    _day_with_wechat(svc, corrected)
    out = run_day(svc, D1)

    after = svc.repo.get_case(case.case_id)
    assert after is not None and after.changed_since_review is not None
    assert (after.changed_since_review.status, after.changed_since_review.delta_minor) == (
        CaseStatus.RESOLVED,
        -1000,
    )
    (event,) = svc.repo.list_audit(case.case_id)
    assert event.actor == f"system:resolve:{RUN1}" and event.details["run_id"] == RUN1
    assert event.details["before"]["status"] == "resolved" and event.details["before"]["delta"] == "-10.00"
    if now is None:  # SO1 matches now: kept closed, out of the run's cases
        assert (after.status, event.action) == (CaseStatus.AUTO_RESOLVED, "case.not_found")
        assert svc.repo.list_cases(RUN1) == [] and out["cases.csv"] == []
        assert after.system_note.startswith(f"Not found again by run {RUN1}: a reviewer had set it resolved")
        return
    assert (after.status, after.type, after.delta_minor) == (CaseStatus.OPEN, now, -2000)
    assert event.action == "case.reopened" and event.details["after"]["delta"] == "-20.00"
    assert after.system_note == (
        "Changed since review: a reviewer had set it resolved for AMOUNT_MISMATCH Δ -10.00 CNY; run "
        f"{RUN1} finds AMOUNT_MISMATCH Δ -20.00 CNY. Review it again."
    )
    assert svc.repo.list_cases(RUN1) == [after]
    run_day(svc, D1)  # a repeat changes nothing and audits nothing new
    assert svc.repo.get_case(case.case_id) == after and len(svc.repo.list_audit(case.case_id)) == 1


def _late_payout(svc: Services, late: Transaction | None = None) -> tuple[str, str]:
    """Day 1's WeChat payout is not on the T+1 statement (MISSING_IN_BANK); it comes on day 2's (T+2):
    ``late``, by default L1 of exactly the day's net 10.00."""
    for day, rows in ((D1, sale("1", 1000, D1)), (D2, sale("2", 500, D2))):
        deliver(svc, day, "erp", [r for r in rows if r.source.value == "erp"])
        deliver(svc, day, "wechat-main", [r for r in rows if r.source.value == "wechat"])
    # The T+1 statement has an unrelated credit only (a case of its own, not this test's).
    deliver(svc, D1, "bank-cmb", [txn("bank", "X0", 1, value_date=D2, memo="interest")], statement_date=D2)
    deliver(svc, D2, "bank-cmb", [credit("W2", 500, D3), late or credit("L1", 1000, D3)], statement_date=D3)
    run_day(svc, D1)
    (missing,) = [c for c in svc.repo.list_cases(RUN1) if c.type is CaseType.MISSING_IN_BANK]
    return missing.case_id, run_id_for("demo", D2)


def _settlement_project() -> Project:
    p = project([1])
    return p.model_copy(update={"accounts": [a for a in p.accounts if a.account_id != "alipay-main"]})


def test_a_late_payout_closes_the_earlier_missing_case_and_audits_it() -> None:
    svc = _services(_settlement_project())
    missing_id, run2 = _late_payout(svc)
    assert _status(svc, missing_id) is CaseStatus.OPEN

    run_day(svc, D2)

    (late,) = [c for c in svc.repo.list_cases(run2) if c.type is CaseType.TIME_MISMATCH]
    assert late.closes == [CaseLink(case_id=missing_id, business_date=D1)]
    closed = svc.repo.get_case(missing_id)
    assert closed is not None and closed.run_id == RUN1 and closed.status is CaseStatus.AUTO_RESOLVED
    assert closed.explained_by == CaseLink(case_id=late.case_id, business_date=D2)
    assert closed.system_note == (
        f"Closed automatically by run {run2}: its case {late.case_id} (TIME_MISMATCH) links bank L1 10.00 CNY "
        "to wechat wechat-main@2026-11-20 10.00 CNY, which is what this case missed. Nothing is missing; "
        "reopen it only if you disagree."
    )
    (event,) = svc.repo.list_audit(missing_id)
    assert (event.action, event.actor) == ("case.auto_resolved", f"system:resolve:{run2}")
    assert (event.details["explained_by"], event.details["explained_by_run"]) == (late.case_id, run2)
    assert (event.details["before"]["status"], event.details["after"]["status"]) == ("open", "auto_resolved")

    run_day(svc, D2)  # a re-run of day 2: closed already, nothing new
    run_day(svc, D1)  # a re-run of day 1 finds the same difference: the closing holds
    assert svc.repo.get_case(missing_id) == closed
    assert len(svc.repo.list_audit(missing_id)) == 1


@pytest.mark.parametrize("status", [CaseStatus.IN_REVIEW, CaseStatus.RESOLVED])
def test_a_late_payout_does_not_override_a_persons_decision(status: CaseStatus) -> None:
    svc = _services(_settlement_project())
    missing_id, run2 = _late_payout(svc)
    _set_status(svc, missing_id, status)

    run_day(svc, D2)

    after = svc.repo.get_case(missing_id)
    assert after is not None and after.status is status
    if status is CaseStatus.RESOLVED:
        assert after.system_note == "" and svc.repo.list_audit(missing_id) == []
        return
    assert after.system_note.startswith(f"Run {run2} found the explanation: its case ")
    assert after.system_note.endswith("Nothing is missing: close it if you agree.")
    assert [e.action for e in svc.repo.list_audit(missing_id)] == ["case.noted"]


@pytest.mark.parametrize("status", [CaseStatus.OPEN, CaseStatus.IN_REVIEW])
def test_a_late_payout_off_the_net_closes_the_earlier_missing_case_and_only_its_difference_is_at_stake(
    status: CaseStatus,
) -> None:
    """Day 1's payout (net 20.00) arrives T+2 as 10.00, its memo naming the day (before: a 长款 10.00 beside
    day 1's open 短款 20.00). Its AMOUNT_MISMATCH closes day 1's MISSING_IN_BANK (in review: only noted), saying
    the day is paid and the difference is the later case's; cases.csv counts 短款 10.00, not the credit."""
    svc = _services(_settlement_project())
    late = credit("L1", 1000, D3, memo=f"{WECHAT_MEMO} 20261120")
    for day, rows in ((D1, sale("1", 2000, D1)), (D2, sale("2", 500, D2))):
        deliver(svc, day, "erp", [r for r in rows if r.source.value == "erp"])
        deliver(svc, day, "wechat-main", [r for r in rows if r.source.value == "wechat"])
    deliver(svc, D1, "bank-cmb", [txn("bank", "X0", 1, value_date=D2, memo="interest")], statement_date=D2)
    deliver(svc, D2, "bank-cmb", [credit("W2", 500, D3), late], statement_date=D3)
    run_day(svc, D1)
    (missing,) = [c for c in svc.repo.list_cases(RUN1) if c.type is CaseType.MISSING_IN_BANK]
    if status is CaseStatus.IN_REVIEW:
        _set_status(svc, missing.case_id, status)
    run2 = run_id_for("demo", D2)

    out = run_day(svc, D2)

    (short,) = [c for c in svc.repo.list_cases(run2) if c.type is CaseType.AMOUNT_MISMATCH]
    assert (short.delta_minor, short.closes) == (-1000, [CaseLink(case_id=missing.case_id, business_date=D1)])
    after = svc.repo.get_case(missing.case_id)
    assert after is not None and after.explained_by == CaseLink(case_id=short.case_id, business_date=D2)
    why = (
        f"its case {short.case_id} (AMOUNT_MISMATCH) links bank L1 10.00 CNY to wechat wechat-main@2026-11-20 "
        "20.00 CNY, which is what this case missed. The day is paid, 10.00 CNY short: that difference is case "
        f"{short.case_id}'s to follow up"
    )
    if status is CaseStatus.OPEN:
        assert after.status is CaseStatus.AUTO_RESOLVED
        assert after.system_note == (
            f"Closed automatically by run {run2}: {why}; reopen this case only if you disagree."
        )
    else:
        assert after.status is CaseStatus.IN_REVIEW
        assert after.system_note == f"Run {run2} found the explanation: {why}: close this case if you agree."
    expected = "case.auto_resolved" if status is CaseStatus.OPEN else "case.noted"
    assert [e.action for e in svc.repo.list_audit(missing.case_id)] == [expected]
    rows = [r for r in out["cases.csv"] if r["rule"] == "wechat-settlement"]
    assert [(r["type"], r["txn_id"], r["delta"], r["direction"], r["at_stake"]) for r in rows] == [
        ("AMOUNT_MISMATCH", "L1", "-10.00", "短款", "10.00")
    ]
    assert out["run"].case_minor_by_type == {"AMOUNT_MISMATCH": 1000}


def test_a_rerun_after_review_statuses_changed_sends_no_updated_mail() -> None:
    """D05: a reviewer's work is no new finding to e-mail everyone about; a changed difference is."""
    svc = notified_day()
    _, first = run_notified(svc, "arn:exec:1")
    cases = svc.repo.list_cases(RUN1)
    _set_status(svc, cases[0].case_id, CaseStatus.RESOLVED)
    _set_status(svc, cases[1].case_id, CaseStatus.IN_REVIEW)

    _, again = run_notified(svc, "arn:exec:2")

    assert first.alert and not again.alert
    assert [m.subject for m in sent_mails(svc)] == [first.subject]
    assert content_fingerprint("{}", cases) != content_fingerprint(
        "{}", [cases[0].model_copy(update={"delta_minor": cases[0].delta_minor - 1000}), *cases[1:]]
    )
