"""`recon parse` in-process on generated files in the real layouts (local/recon_local/demo_data.py) and, when
present, on the real MT940 samples in ../shared/samples."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from recon.domain import Source
from recon.parsing import builtin_profiles, parse_statement
from recon.tables import NORMALIZED_SCHEMA
from recon_local.cli import main
from recon_local.demo_data import generate_day, write_day
from tests.unit.logic.test_parse_stage import ACME_V1, acme_csv
from tests.unit.parsing._support import samples

DAY = date(2026, 11, 20)
ERROR_KEYS = {"file", "row", "column", "reason"}
SOURCES = {
    "erp": Source.ERP,
    "wechat-main": Source.WECHAT,
    "alipay-main": Source.ALIPAY,
    "bank-cmb": Source.BANK,
}


@pytest.fixture
def demo_files(tmp_path: Path) -> list[Path]:
    return write_day(generate_day(DAY), tmp_path / "in")


def _blocks(text: str) -> dict[str, str]:
    """The report of each file by its name (a report starts at an unindented ``<path>: `` line)."""
    found: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line and not line.startswith(" ") and ": " in line:
            name = Path(line.split(": ", 1)[0]).name
            found[name] = line.split(": ", 1)[1] + "\n"
        elif name:
            found[name] += line + "\n"
    return found


def _version(name: str) -> str:
    return builtin_profiles().get(name).version


def test_demo_files_are_described_and_written_as_csv_and_parquet(
    demo_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["parse", *map(str, demo_files), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.rstrip().endswith("4 file(s): 4 accepted, 0 rejected")
    day = generate_day(DAY)
    for account, (name, data) in day.files.items():
        parsed = parse_statement(
            data, filename=name, raw_key=name, statement_id="s", source=SOURCES[account], account_id=account
        )
        block = _blocks(text)[name]
        assert block.startswith("ACCEPTED")
        assert f"  format      {parsed.format} (detected, confidence " in block
        if parsed.format.startswith("camt"):  # a code reader, not a profile
            assert f"  profile     {parsed.format}@1" in block
        else:
            assert f"  profile     {parsed.format}@{_version(parsed.format)}" in block
        assert f"  encoding    {parsed.encoding}" in block
        assert (
            f"  rows        read {parsed.rows_read} = parsed {parsed.rows_parsed} + skipped {parsed.rows_skipped} "
            "+ rejected 0" in block
        )
        for total in parsed.control_totals:
            assert f"✓ {total.name}: stated {total.stated} = computed {total.computed}" in block
        assert "✗" not in block and "  errors      none" in block
        stem = name.removesuffix(".zip").rsplit(".", 1)[0]
        table = pq.read_table(out / f"{stem}.parquet")
        assert table.schema.equals(NORMALIZED_SCHEMA) and table.num_rows == parsed.rows_parsed
        assert (out / f"{stem}.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # for Excel
        with (out / f"{stem}.csv").open(encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == parsed.rows_parsed and list(rows[0]) == NORMALIZED_SCHEMA.names
    # The ERP export holds one order exported twice: flagged, kept.
    assert "  duplicates  1 row(s) flagged in_file_duplicate" in _blocks(text)["erp_orders_20261120.csv"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n.removesuffix('.zip').rsplit('.', 1)[0]}.{ext}"
        for n, _ in day.files.values()
        for ext in ("csv", "parquet")
    )


def test_same_files_give_byte_identical_outputs(demo_files: list[Path], tmp_path: Path) -> None:
    for run in ("a", "b"):
        assert main(["parse", *map(str, demo_files), "--out", str(tmp_path / run)]) == 0
    for produced in (tmp_path / "a").iterdir():
        assert produced.read_bytes() == (tmp_path / "b" / produced.name).read_bytes(), produced.name


def test_a_bad_row_rejects_its_file_naming_row_and_column(
    demo_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wechat = next(p for p in demo_files if p.name.startswith("wechat"))
    lines = wechat.read_text("utf-8").splitlines(keepends=True)
    fields = lines[1].split(",")
    fields[12] = "`12.3x"  # 应结订单金额 of the first data row
    lines[1] = ",".join(fields)
    wechat.write_text("".join(lines), "utf-8")
    code = main(["parse", *map(str, demo_files), "--out", str(tmp_path / "out")])
    assert code == 1
    text = capsys.readouterr().out
    block = _blocks(text)[wechat.name]
    assert block.startswith("REJECTED (the parse stage would quarantine it)")
    assert f"    {wechat.name}: row 2, column '应结订单金额': " in block and "12.3x" in block
    assert text.rstrip().endswith("4 file(s): 3 accepted, 1 rejected")
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert "wechat_tradebill_ALL_20261120.parquet" not in written and "erp_orders_20261120.parquet" in written


def test_json_output(demo_files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    erp = next(p for p in demo_files if p.name.startswith("erp"))
    broken = erp.with_name("broken.csv")
    broken.write_bytes(b"hello, this is not a statement\n")
    assert main(["parse", str(erp), str(broken), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["rejected"] == 1
    good, bad = doc["files"]
    assert (good["verdict"], good["format"], good["profile"]) == (
        "accepted",
        "erp.orders.csv",
        "erp.orders.csv",
    )
    assert good["rows_read"] == good["rows_parsed"] + good["rows_skipped"] + good["rows_rejected"]
    assert (good["in_file_duplicates"], good["errors"], good["confidence"]) == (1, [], 0.99)
    assert (bad["verdict"], bad["format"], bad["error_count"]) == ("rejected", "unknown", 1)
    assert set(bad["errors"][0]) == {"file", "row", "column", "reason"}
    assert "unknown statement format" in bad["errors"][0]["reason"]


def test_a_profile_file_of_ours_reads_a_layout_that_is_not_built_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statement = tmp_path / "acme-2026-11-20.csv"
    statement.write_bytes(
        acme_csv(("2026-11-20", "R1", "Payout", "100.00"), ("2026-11-20", "R2", "Fee", "-1.50"))
    )
    assert main(["parse", str(statement)]) == 1  # not detected: no built-in profile knows it
    capsys.readouterr()
    profile = tmp_path / "acme.yaml"
    profile.write_text(ACME_V1, "utf-8")
    assert main(["parse", str(statement), "--profile", str(profile), "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "  format      bank.acme.csv (--profile)" in text and "  profile     bank.acme.csv@1" in text
    assert "  rows        read 3 = parsed 2 + skipped 1 + rejected 0" in text
    table = pq.read_table(io.BytesIO((tmp_path / "out" / "acme-2026-11-20.parquet").read_bytes()))
    assert table.column("amount_minor").to_pylist() == [10000, -150]
    assert set(table.column("profile_version").to_pylist()) == {"1"}


def test_an_invalid_profile_or_unknown_built_in_is_a_usage_error(
    demo_files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text(ACME_V1.replace("amount: {column: Amount}", "amount: {colum: Amount}"), "utf-8")
    assert main(["parse", str(demo_files[0]), "--profile", str(profile)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: profile bad@latest ({profile}): invalid profile: ") and "colum" in err
    assert main(["parse", str(demo_files[0]), "--profile", "wechat.tradebill.all@0.9"]) == 2
    assert "no profile wechat.tradebill.all version 0.9" in capsys.readouterr().err


def test_a_built_in_profile_can_be_forced(demo_files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    wechat = next(p for p in demo_files if p.name.startswith("wechat"))
    version = _version("wechat.tradebill.all")
    assert main(["parse", str(wechat), "--profile", f"wechat.tradebill.all@{version}"]) == 0
    assert f"  profile     wechat.tradebill.all@{version}" in capsys.readouterr().out
    assert main(["parse", str(wechat), "--profile", "erp.orders.csv"]) == 1  # the wrong layout, forced
    assert "REJECTED" in capsys.readouterr().out


def test_real_mt940_samples_account_for_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(samples("mt940").rglob("*.sta"))
    code = main(["parse", "--json", "--currency", "EUR", *map(str, files)])
    doc = json.loads(capsys.readouterr().out)
    assert code == (1 if doc["rejected"] else 0) and len(doc["files"]) == len(files)
    assert all(f["format"].startswith("mt940") for f in doc["files"])
    assert any(f["verdict"] == "accepted" for f in doc["files"])
    _consistent(doc["files"])


def test_every_real_sample_gets_a_consistent_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    root = samples(".")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix not in (".yml", ".json", ".md", ".tsv") and p.name != "LICENSE"
    )
    code = main(["parse", "--json", *map(str, files)])
    doc = json.loads(capsys.readouterr().out)
    assert code == (1 if doc["rejected"] else 0) and len(doc["files"]) == len(files)
    _consistent(doc["files"])
    accepted = {f["format"].split(".")[0] for f in doc["files"] if f["verdict"] == "accepted"}
    assert {"mt940", "camt", "bank", "ofx"} <= accepted


def _consistent(files: list[dict[str, Any]]) -> None:
    """Nothing lost and the verdict follows the errors, file by file."""
    for found in files:
        name = found["file"]
        assert found["rows_read"] == found["rows_parsed"] + found["rows_skipped"] + found["rows_rejected"], (
            name
        )
        assert (found["verdict"] == "accepted") == (found["error_count"] == 0), name
        assert found["error_count"] == len(found["errors"]) and all(
            set(e) == ERROR_KEYS for e in found["errors"]
        )
        for total in found["control_totals"]:
            assert total["ok"] == (total["stated"] == total["computed"]), name
