"""Match stage: load the run's normalized rows and the open items earlier runs left, apply the project's
rules (recon.matching), store the results as Parquet and the new open items.

Rows are loaded in a canonical order (accounts as the project lists them, statements by id, rows as
stored), so the same inputs give byte-identical results.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from recon.domain import FileAccounting, Project, StatementStatus
from recon.keys import (
    INPUTS_FILE,
    RESULT_FILES,
    open_batches_key,
    open_items_key,
    open_items_prefix,
    parse_open_items_key,
    result_key,
)
from recon.matching import (
    MatchResult,
    Share,
    match_partition,
    match_residual,
    match_table,
    merge_results,
)
from recon.matching.partition import split_inputs
from recon.matching.settlement import Batch, batches_from_json, batches_to_json
from recon.ports import ObjectStore
from recon.tables import NORMALIZED_SCHEMA, read_parquet

from .chain import chain_break
from .contracts import MatchInput, MatchOutput, RunRef
from .projects import load_project, statement_date_for
from .run import audit
from .services import Services

FIRST_SEEN = "first_seen"


def write_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table.combine_chunks(), sink, compression="zstd")
    return sink.getvalue()


def read_table(svc: Services, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(svc.store.get(svc.settings.data_bucket, key)))


class Inputs(BaseModel):
    """The objects whose rows the run matched, in order (placement row i is row i of their concatenation)."""

    objects: list[tuple[str, int]] = Field(default_factory=list, description="(key, rows)")


def _load_rows(
    svc: Services, project: Project, ref: RunRef, inputs: Inputs
) -> tuple[list[pa.Table], list[FileAccounting]]:
    tables: list[pa.Table] = []
    files: list[FileAccounting] = []
    for account in project.accounts:
        # Statements are filed under the business date they serve (a bank statement of T+1 serves T).
        statements = svc.repo.list_statements(project.project_id, account.account_id, ref.business_date)
        for st in sorted(statements, key=lambda s: (s.statement_id, s.raw_key)):
            files.append(
                FileAccounting(
                    raw_key=st.raw_key,
                    source=st.source,
                    account_id=st.account_id,
                    status=st.status.value,
                    rows_read=st.rows_read,
                    rows_parsed=st.rows_parsed,
                    rows_skipped=st.rows_skipped,
                    rows_rejected=st.rows_rejected,
                    errors=[str(e) for e in st.errors[:20]],
                )
            )
            if st.status is StatementStatus.PARSED and st.parquet_key:
                tables.append(read_parquet(svc.store.get(svc.settings.data_bucket, st.parquet_key)))
                inputs.objects.append((st.parquet_key, tables[-1].num_rows))
    return tables, files


def previous_open_items(
    svc: Services, project_id: str, business_date: date
) -> tuple[str | None, pa.Table | None]:
    """The latest open-items snapshot of a business date before this one (carry-over), and its key."""
    dated = [
        (d, o.key)
        for o in svc.store.list(svc.settings.data_bucket, open_items_prefix(project_id))
        if (d := parse_open_items_key(o.key)) is not None and d < business_date
    ]
    if not dated:
        return None, None
    _, key = max(dated)
    return key, read_table(svc, key)


def _carried_batches(svc: Services, rows_key: str | None) -> dict[str, list[Batch]]:
    """The open batches saved beside the open-items snapshot the run carries."""
    day = parse_open_items_key(rows_key) if rows_key else None
    if day is None:
        return {}
    key = open_batches_key(rows_key.split("/")[1].removeprefix("project="), day) if rows_key else ""
    if svc.store.head(svc.settings.data_bucket, key) is None:
        return {}
    return batches_from_json(svc.store.get(svc.settings.data_bucket, key).decode())


def open_batches(svc: Services, ref: RunRef) -> dict[str, list[Batch]]:
    """The batches this run left open."""
    key = open_batches_key(ref.project_id, ref.business_date)
    if svc.store.head(svc.settings.data_bucket, key) is None:
        return {}
    return batches_from_json(svc.store.get(svc.settings.data_bucket, key).decode())


def load_identity(store: ObjectStore, bucket: str, ref: RunRef) -> pa.Table:
    """txn_uid and txn_id of the run's rows, in placement order (read back from the inputs)."""
    key = result_key(ref.project_id, ref.business_date, ref.run_id, INPUTS_FILE)
    inputs = Inputs.model_validate_json(store.get(bucket, key))
    parts = []
    for object_key, rows in inputs.objects:
        part = pq.read_table(io.BytesIO(store.get(bucket, object_key)), columns=["txn_uid", "txn_id"])
        if part.num_rows != rows:
            raise ValueError(f"{object_key} now holds {part.num_rows} rows, the run matched {rows}")
        parts.append(part)
    if not parts:
        return pa.table({"txn_uid": pa.array([], pa.string()), "txn_id": pa.array([], pa.string())})
    return pa.concat_tables(parts)


def assemble(tables: list[pa.Table], carried: pa.Table | None) -> pa.Table:
    """Today's rows (first seen today: null) followed by the carried open items."""
    parts = list(tables)
    if carried is not None and carried.num_rows:
        parts.append(carried)
    if not parts:  # nothing delivered (the run still records it) and nothing carried
        parts = [NORMALIZED_SCHEMA.empty_table()]
    table = pa.concat_tables(parts, promote_options="permissive")
    if FIRST_SEEN not in table.column_names:
        table = table.append_column(FIRST_SEEN, pa.nulls(table.num_rows, pa.date32()))
    return table


def open_snapshot(rows: pa.Table, result: MatchResult) -> pa.Table:
    """The rows left open, as full rows with the business date each was first seen."""
    open_rows = rows.take(pa.array(result.open_rows))
    first_seen = pc.fill_null(
        open_rows[FIRST_SEEN].cast(pa.date32()), pa.scalar(result.business_date, pa.date32())
    )
    return open_rows.set_column(open_rows.column_names.index(FIRST_SEEN), FIRST_SEEN, first_seen)


PARTITIONS_DIR = "partitions/"


def _partition_key(ref: RunRef, name: str) -> str:
    return result_key(ref.project_id, ref.business_date, ref.run_id, PARTITIONS_DIR + name)


def _put(svc: Services, key: str, body: bytes, content_type: str) -> None:
    svc.store.put(svc.settings.data_bucket, key, body, content_type=content_type)


def _put_table(svc: Services, key: str, table: pa.Table) -> None:
    _put(svc, key, write_parquet(table), "application/vnd.apache.parquet")


@dataclass
class _Day:
    project: Project
    rows: pa.Table
    inputs: Inputs
    files: list[FileAccounting]
    carried_from: str | None
    carried_rows: int


def _load_day(svc: Services, request: RunRef) -> _Day:
    project = load_project(svc.store, svc.settings, request.project_id)
    inputs = Inputs()
    tables, files = _load_rows(svc, project, request, inputs)
    carried_from, carried = previous_open_items(svc, project.project_id, request.business_date)
    if carried_from is not None and carried is not None and carried.num_rows:
        inputs.objects.append((carried_from, carried.num_rows))
    rows = assemble(tables, carried)
    return _Day(project, rows, inputs, files, carried_from, 0 if carried is None else carried.num_rows)


def match_run(request: MatchInput, svc: Services) -> MatchOutput:
    """whole / plan / partition / residual (see ``MatchInput.mode``)."""
    if request.mode == "partition":
        return _match_one_partition(request, svc)
    if request.mode == "residual":
        return _match_the_residual(request, svc)
    day = _load_day(svc, request)
    if request.mode == "plan" and day.rows.num_rows > svc.settings.match_partition_rows:
        return _plan_partitions(request, svc, day)
    carried = _carried_batches(svc, day.carried_from)
    result = match_table(day.project, day.rows, request.business_date, carried_batches=carried)
    return _store(request, svc, day, result)


def _plan_partitions(request: MatchInput, svc: Services, day: _Day) -> MatchOutput:
    """Split a large day into partitions (Parquet) listed in a manifest, for the Distributed Map."""
    n = -(-day.rows.num_rows // svc.settings.match_rows_per_partition)
    for k, part in enumerate(split_inputs(day.project, day.rows, request.business_date, n)):
        _put_table(svc, _partition_key(request, f"part-{k:04d}.parquet"), part)
    manifest = _partition_key(request, "manifest.json")
    _put(svc, manifest, json.dumps([{"partition": k} for k in range(n)]).encode(), "application/json")
    _record_files(request, svc, day)
    return MatchOutput(
        run_id=request.run_id,
        project_id=request.project_id,
        business_date=request.business_date,
        match_groups=0,
        residue_rows=0,
        partitioned=True,
        manifest_key=manifest,
        partitions=n,
    )


def _match_one_partition(request: MatchInput, svc: Services) -> MatchOutput:
    if request.partition is None:
        raise ValueError("mode partition needs a partition number")
    project = load_project(svc.store, svc.settings, request.project_id)
    k = request.partition
    part = read_table(svc, _partition_key(request, f"part-{k:04d}.parquet"))
    share = match_partition(project, part, request.business_date)
    prefix = f"share-{k:04d}/"
    for name in ("placements", "groups", "cases", "residual"):
        table = getattr(share, name)
        _put_table(svc, _partition_key(request, f"{prefix}{name}.parquet"), table)
    _put(
        svc,
        _partition_key(request, f"{prefix}batches.json"),
        share.batches_json().encode(),
        "application/json",
    )
    return MatchOutput(
        run_id=request.run_id,
        project_id=request.project_id,
        business_date=request.business_date,
        match_groups=share.groups.num_rows,
        residue_rows=0 if share.residual is None else share.residual.num_rows,
        partition=k,
    )


def _match_the_residual(request: MatchInput, svc: Services) -> MatchOutput:
    """Merge the partitions' shares and match what they left: the same result as a whole run."""
    manifest = json.loads(svc.store.get(svc.settings.data_bucket, _partition_key(request, "manifest.json")))
    shares: list[Share] = []
    for item in manifest:
        prefix = f"share-{int(item['partition']):04d}/"
        tables = {
            n: read_table(svc, _partition_key(request, f"{prefix}{n}.parquet"))
            for n in ("placements", "groups", "cases", "residual")
        }
        batches = batches_from_json(
            svc.store.get(svc.settings.data_bucket, _partition_key(request, f"{prefix}batches.json")).decode()
        )
        shares.append(
            Share(tables["placements"], tables["groups"], tables["cases"], tables["residual"], batches)
        )
    day = _load_day(svc, request)  # the same inputs, for the open-items snapshot and the accounting
    rest = match_residual(
        day.project,
        [s.residual for s in shares if s.residual is not None],
        [s.batches or {} for s in shares],
        request.business_date,
        carried_batches=_carried_batches(svc, day.carried_from),
    )
    return _store(request, svc, day, merge_results([*shares, rest], request.business_date))


def _store(request: MatchInput, svc: Services, day: _Day, result: MatchResult) -> MatchOutput:
    """Write the results, the inputs list, the open items and batches; record the run's files."""
    for name in RESULT_FILES:
        key = result_key(request.project_id, request.business_date, request.run_id, name)
        sink = io.BytesIO()
        result.write(name.removesuffix(".parquet"), sink)
        _put(svc, key, sink.getvalue(), "application/vnd.apache.parquet")
    _put(
        svc,
        result_key(request.project_id, request.business_date, request.run_id, INPUTS_FILE),
        day.inputs.model_dump_json().encode(),
        "application/json",
    )
    _put(
        svc,
        open_batches_key(day.project.project_id, request.business_date),
        batches_to_json(result.open_batches).encode(),
        "application/json",
    )
    _put_table(
        svc, open_items_key(day.project.project_id, request.business_date), open_snapshot(day.rows, result)
    )
    _record_files(request, svc, day)
    counts = result.counts()
    audit(
        svc,
        "system:match",
        "run.matched",
        request.run_id,
        rows=day.rows.num_rows,
        carried_in=day.carried_rows,
        carried_from=day.carried_from,
        groups=result.groups.num_rows,
        cases=result.cases.num_rows,
        **{f"rows_{k}": v for k, v in sorted(counts.items())},
    )
    return MatchOutput(
        run_id=request.run_id,
        project_id=request.project_id,
        business_date=request.business_date,
        match_groups=result.groups.num_rows,
        residue_rows=counts.get("case", 0),
    )


def _record_files(request: MatchInput, svc: Services, day: _Day) -> None:
    project, files = day.project, day.files
    run = svc.repo.get_run(request.run_id)
    if run is not None:
        run.files = files
        run.quarantined_files = sum(f.status == StatementStatus.QUARANTINED.value for f in files)
        problems = [
            f"{c.account_id}: {c.error} {c.cause or ''}".strip() for c in request.channels if c.failed
        ]
        delivered = {f.account_id for f in files}
        problems += [
            f"{a.account_id}: no statement delivered for {statement_date_for(project, a, request.business_date)}"
            for a in project.accounts
            if a.account_id not in delivered
        ]
        # A broken balance chain (a statement missing between two bank statements) blocks the account: the
        # run needs attention until the gap is filled, whichever way the run was started.
        blocked = {reason for c in request.channels for reason in c.blocked}
        for account in project.accounts:
            for st in svc.repo.list_statements(project.project_id, account.account_id, request.business_date):
                reason = chain_break(st)
                if reason:
                    blocked.add(reason)
        problems += sorted(blocked)
        if problems:
            run.error = "; ".join(problems)[:2000]
        svc.repo.put_run(run)
