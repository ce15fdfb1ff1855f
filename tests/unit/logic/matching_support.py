"""Helpers for the matching tests: rows -> Arrow tables (one statement each) -> engine results, read back
as plain Python for assertions."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recon.domain import Case, MatchGroup, Project, Transaction
from recon.matching import (
    MatchResult,
    match_partition,
    match_residual,
    match_table,
    merge_results,
    partition_inputs,
    with_identity,
)
from recon.matching.partition import Share, batches_from_json
from recon.matching.settlement import Batch, batches_to_json
from recon.resolving import cases_from_tables, groups_from_tables
from recon.tables import to_table

from .conftest import DAY


def table_of(rows: list[Transaction], *, first_seen: dict[str, date] | None = None) -> pa.Table:
    """Rows as the match stage loads them: one table per statement (parser flags computed per file)."""
    by_statement: dict[str, list[Transaction]] = defaultdict(list)
    for row in rows:
        by_statement[row.statement_id].append(row)
    table = pa.concat_tables([to_table(by_statement[k]) for k in by_statement])
    if first_seen:
        values = [first_seen.get(uid) for uid in table["txn_uid"].to_pylist()]
        table = table.append_column("first_seen", pa.array(values, pa.date32()))
    return table


@dataclass
class Outcome:
    result: MatchResult
    rows: pa.Table
    run_id: str = "demo-20261120"

    @property
    def placed(self) -> pa.Table:
        return with_identity(self.result.placements, self.rows, self.result.groups, self.result.cases)

    def where(self, txn_id: str) -> dict[str, Any]:
        """The placement of the (first) row with this source id."""
        hits = [r for r in self.placed.to_pylist() if r["txn_id"] == txn_id]
        assert hits, f"no row {txn_id}"
        return hits[0]

    def all_where(self, txn_id: str) -> list[dict[str, Any]]:
        return [r for r in self.placed.to_pylist() if r["txn_id"] == txn_id]

    @property
    def groups(self) -> list[MatchGroup]:
        return groups_from_tables(self.run_id, self.result.groups, self.placed)

    @property
    def cases(self) -> list[Case]:
        return cases_from_tables(self.run_id, self.result.cases, self.placed)

    def group_of(self, txn_id: str) -> MatchGroup:
        gid = self.where(txn_id)["group_id"]
        return next(g for g in self.groups if g.group_id == gid)

    def case_of(self, txn_id: str) -> Case:
        cid = self.where(txn_id)["case_id"]
        assert cid, f"{txn_id} is {self.where(txn_id)['disposition']}, not in a case"
        return next(c for c in self.cases if c.case_id == cid)

    def types(self) -> list[str]:
        return sorted(c.type.value for c in self.cases)

    def dispositions(self) -> dict[str, int]:
        return self.result.counts()

    def parquet(self) -> tuple[bytes, bytes, bytes]:
        out = []
        for name in ("placements", "groups", "cases"):
            sink = io.BytesIO()
            self.result.write(name, sink)
            out.append(sink.getvalue())
        return out[0], out[1], out[2]


def run(project: Project, rows: list[Transaction] | pa.Table, day: date = DAY) -> Outcome:
    table = rows if isinstance(rows, pa.Table) else table_of(rows)
    result = match_table(project, table, day)
    assert result.placements.num_rows == table.num_rows  # one placement per input row
    return Outcome(result, table, f"{project.project_id}-{day:%Y%m%d}")


def read(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))


def parquet_round_trip(table: pa.Table) -> pa.Table:
    """``table`` as another task reads it back: written to Parquet and read again."""
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return pq.read_table(io.BytesIO(sink.getvalue()))


def partitioned(
    project: Project,
    table: pa.Table,
    n: int,
    *,
    day: date = DAY,
    carried: dict[str, list[Batch]] | None = None,
) -> Outcome:
    """The day matched as deployed in ``n`` partitions (keyed phase per partition, then the residual), each
    task's results passed through Parquet and JSON as between Lambda invocations, then merged."""
    shares = [
        match_partition(project, parquet_round_trip(part), day)
        for part in partition_inputs(project, table, day, n)
    ]
    moved = [
        Share(
            parquet_round_trip(s.placements),
            parquet_round_trip(s.groups),
            parquet_round_trip(s.cases),
            parquet_round_trip(s.residual),
            batches_from_json(s.batches_json()),
        )
        for s in shares
        if s.residual is not None
    ]
    rest = match_residual(
        project,
        [s.residual for s in moved if s.residual is not None],
        [s.batches or {} for s in moved],
        day,
        carried_batches=batches_from_json(batches_to_json(carried or {})),
    )
    return Outcome(merge_results([*moved, rest], day), table)
