"""matches.csv written a chunk at a time (the resolve stage streams it into one object): the pieces joined
are the file, wherever the chunk boundaries fall."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recon.domain import Project
from recon.reporting.export import CSV_BOM, MATCH_COLUMNS
from recon.reporting.masking import Masker
from recon.reporting.tabular import matches_csv, matches_csv_chunks
from tests.export_contract import FOUNDATION_MATCH

from .test_reporting import _results


def _joined(
    placed: pa.Table, groups: pa.Table | None, rows_per_chunk: int, masks: list[tuple[str, str]]
) -> bytes:
    return b"".join(matches_csv_chunks(placed, groups, masks, rows_per_chunk=rows_per_chunk))


def test_chunks_joined_are_the_file_wherever_the_boundaries_fall(project: Project) -> None:
    out, _ = _results(project)
    masks = Masker.for_project(project).pairs
    whole = _joined(out.placed, out.result.groups, 10**6, masks)
    rows = list(csv.DictReader(io.StringIO(whole.decode("utf-8-sig"))))
    members = [r["group_id"] for r in rows]
    # The day has groups of several members, so small chunks split a group's rows between two pieces.
    assert len(rows) >= 4 and len(set(members)) < len(members)
    for size in range(1, len(rows) + 2):
        pieces = list(matches_csv_chunks(out.placed, out.result.groups, masks, rows_per_chunk=size))
        assert b"".join(pieces) == whole, size
        # The byte order mark and the header alone.
        assert pieces[0] == CSV_BOM + (",".join(f'"{c}"' for c in MATCH_COLUMNS) + "\n").encode()
        assert len(pieces) == 1 + -(-len(rows) // size)
    assert matches_csv(out.placed, out.result.groups, masks) == whole


def test_chunked_file_is_what_one_write_of_the_whole_table_gives(project: Project) -> None:
    """Against the one-table write the stage used before streaming (same columns, one ``write_csv``)."""
    out, _ = _results(project)
    chunked = _joined(out.placed, out.result.groups, 2, [])
    table = pacsv.read_csv(
        io.BytesIO(chunked),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in MATCH_COLUMNS}, strings_can_be_null=False
        ),
    )
    sink = io.BytesIO(CSV_BOM)  # the file starts with a byte order mark (for Excel); pyarrow reads past it
    sink.seek(len(CSV_BOM))
    pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="needed", include_header=True))
    assert sink.getvalue() == chunked
    assert table.column_names[: len(FOUNDATION_MATCH)] == FOUNDATION_MATCH


def test_no_matched_rows_give_the_header_alone(project: Project) -> None:
    out, _ = _results(project)
    none = out.placed.filter(pc.not_equal(out.placed["disposition"].cast(pa.string()), "matched"))
    header = CSV_BOM + (",".join(f'"{c}"' for c in MATCH_COLUMNS) + "\n").encode()
    assert _joined(none, out.result.groups, 3, []) == header
    assert _joined(none.slice(0, 0), None, 3, []) == header


def test_one_matched_row(project: Project) -> None:
    out, _ = _results(project)
    matched = out.placed.filter(pc.equal(out.placed["disposition"].cast(pa.string()), "matched"))
    one = matched.slice(0, 1)
    pieces = list(matches_csv_chunks(one, out.result.groups, [], rows_per_chunk=1))
    assert len(pieces) == 2
    rows = list(csv.DictReader(io.StringIO(b"".join(pieces).decode("utf-8-sig"))))
    assert len(rows) == 1 and rows[0]["txn_id"] == one["txn_id"][0].as_py() and rows[0]["evidence"]
