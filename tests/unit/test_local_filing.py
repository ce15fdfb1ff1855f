"""`recon run` files each local input under the statement date its content says (recon_local.local_run)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from recon.domain import Project
from recon_local.demo_data import generate_day, write_day
from recon_local.local_run import InputError, business_days, file_inputs, input_files

REPO = Path(__file__).resolve().parents[2]
PROJECT = Project.from_yaml((REPO / "local/recon_local/projects/demo.yaml").read_text("utf-8"))
DAY = date(2026, 11, 20)


def _filed(files: list[Path], dates: list[date]) -> dict[str, tuple[str, date, str]]:
    return {f.path.name: (f.account_id, f.statement_date, f.note) for f in file_inputs(PROJECT, files, dates)}


def test_a_day_is_filed_where_its_run_reads_it(tmp_path: Path) -> None:
    files = write_day(generate_day(DAY), tmp_path)
    filed = _filed(files, [DAY])
    assert sorted((a, d) for a, d, _ in filed.values()) == [
        ("alipay-main", DAY),
        ("bank-cmb", date(2026, 11, 21)),  # T+1
        ("erp", DAY),
        ("wechat-main", DAY),
    ]
    assert not any(note for _, _, note in filed.values())


def test_a_bank_statement_of_another_day_is_filed_under_its_own_date_with_a_warning(tmp_path: Path) -> None:
    day = write_day(generate_day(DAY), tmp_path / "day")
    later = write_day(generate_day(date(2026, 11, 21)), tmp_path / "later")
    wrong = next(p for p in later if p.name.startswith("camt"))  # dated 2026-11-22
    files = [p for p in day if not p.name.startswith("camt")] + [wrong]
    account, filed_under, note = _filed(files, [DAY])[wrong.name]
    assert (account, filed_under) == ("bank-cmb", date(2026, 11, 22))
    assert "2026-11-22" in note and "2026-11-21 (for 2026-11-20)" in note and "do not reconcile" in note


def test_consecutive_days_from_one_folder_and_dated_sub_folders(tmp_path: Path) -> None:
    first = write_day(generate_day(DAY), tmp_path / "in")
    (tmp_path / "in" / "2026-11-22").mkdir()
    second = write_day(generate_day(date(2026, 11, 21)), tmp_path / "in" / "2026-11-22")
    (tmp_path / "in" / "notes").mkdir()  # not a date: not an input folder
    files = input_files(tmp_path / "in")
    assert sorted(files) == sorted(first + second)
    dates = business_days(DAY, date(2026, 11, 21))
    filed = _filed(files, dates)
    assert {d for _, d, _ in filed.values()} == {DAY, date(2026, 11, 21), date(2026, 11, 22)}
    assert not any(note for _, _, note in filed.values())
    with pytest.raises(InputError):
        business_days(date(2026, 11, 21), DAY)


def test_with_lags_1_and_2_each_bank_statement_is_filed_for_the_run_that_reads_it(tmp_path: Path) -> None:
    """WeChat settling T+1 or T+2: the runs of two days read the T+1 statements (the smallest lag), so both
    delivered bank statements are reconciled, one by each run; none was left unread with a warning."""
    data = PROJECT.model_dump(mode="json")
    for rule in data["rules"]:
        if rule["name"] == "wechat-settlement":
            rule["lag_days"] = [1, 2]
    project = Project.model_validate(data)
    second = date(2026, 11, 21)
    files = write_day(generate_day(DAY), tmp_path / "a") + write_day(generate_day(second), tmp_path / "b")
    filed = file_inputs(project, files, business_days(DAY, second))
    bank = sorted((f.statement_date, f.note) for f in filed if f.account_id == "bank-cmb")
    assert bank == [(date(2026, 11, 21), ""), (date(2026, 11, 22), "")]


def test_a_file_whose_day_cannot_be_read_needs_a_dated_folder_when_several_days_run(tmp_path: Path) -> None:
    erp = next(p for p in write_day(generate_day(DAY), tmp_path) if p.name.startswith("erp"))
    empty = tmp_path / "erp__empty.csv"
    empty.write_bytes(erp.read_bytes().splitlines(keepends=True)[0])  # the header only: no rows, no date
    assert _filed([empty], [DAY])[empty.name][1] == DAY  # one day: the day's run reads it
    with pytest.raises(InputError, match=r"erp__empty\.csv"):
        file_inputs(PROJECT, [empty], business_days(DAY, date(2026, 11, 21)))


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("wechat_tradebill_ALL_20261120.csv", b"", "is empty"),  # a failed download
        ("notes.txt", "给财务的备注\n".encode(), "not a statement recon can read"),
    ],
)
def test_a_file_that_is_no_statement_is_named_with_why_and_what_to_do(
    tmp_path: Path, name: str, content: bytes, says: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as raised:
        file_inputs(PROJECT, [path], [DAY])
    message = str(raised.value)
    assert name in message and says in message
    assert "remove it" in message and "'<account_id>__'" in message
    assert "no accounts" not in message


def test_a_file_of_a_source_the_project_has_twice_or_not_at_all_says_which(tmp_path: Path) -> None:
    bill = next(p for p in write_day(generate_day(DAY), tmp_path) if p.name.startswith("wechat"))
    two = PROJECT.model_copy(
        update={
            "accounts": [
                *PROJECT.accounts,
                PROJECT.account("wechat-main").model_copy(update={"account_id": "wechat-2"}),
            ]
        }
    )
    with pytest.raises(InputError, match=r"several wechat accounts \(wechat-main, wechat-2\)"):
        file_inputs(two, [bill], [DAY])
    none = PROJECT.model_copy(
        update={"accounts": [a for a in PROJECT.accounts if a.source.value != "wechat"]}
    )
    with pytest.raises(InputError, match=r"the project has no wechat account"):
        file_inputs(none, [bill], [DAY])


def test_a_bank_statement_of_several_days_is_filed_under_the_first_day_a_run_reads(tmp_path: Path) -> None:
    from tests.unit.logic.test_parse_stage import PROJECT as ACME
    from tests.unit.logic.test_parse_stage import mt940

    days = [date(2026, 11, d) for d in (21, 22, 23)]
    week = tmp_path / "bank-eur__week.sta"  # an MT940 export of three statement periods; it states the 23rd
    week.write_bytes(b"".join(mt940(d, f"{1000 + n}.00", [(f"E{n}", "1.00")]) for n, d in enumerate(days)))

    (filed,) = file_inputs(Project.from_yaml(ACME), [week], [date(2026, 11, 20), *days])

    # The run of the 21st parses it, and each covered day's run reads that day's rows.
    assert (filed.account_id, filed.statement_date, filed.note) == ("bank-eur", days[0], "")
