"""Match stage: load the run's normalized rows and the open items earlier runs left, apply the project's
rules (recon.matching), store the results as Parquet and the new open items.

Rows are loaded in a canonical order (accounts as the project lists them, statements by id, rows as
stored), so the same inputs give byte-identical results.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from recon.domain import FileAccounting, Project, Source, Statement, StatementDay, StatementStatus
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
from recon.matching.context import AWAITING_COLUMN
from recon.matching.engine import in_file_duplicates
from recon.matching.partition import prepare_slice
from recon.matching.residue import next_awaiting
from recon.matching.settlement import Batch, batches_from_json, batches_to_json
from recon.ports import ObjectStore
from recon.statement_versions import SUPERSEDED, incomplete_accounts, superseded
from recon.tables import NORMALIZED_SCHEMA, mark_duplicates, normalized, read_parquet

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


def _day_statements(
    svc: Services, project: Project, ref: RunRef
) -> tuple[list[tuple[str, int]], list[FileAccounting]]:
    """The day's statement objects in the canonical order, as (key, rows the parse stage stored), and the
    accounting of every file delivered (from the repository: nothing is read)."""
    objects: list[tuple[str, int]] = []
    files: list[FileAccounting] = []
    for account in project.accounts:
        # Statements are filed under the business date they serve (a bank statement of T+1 serves T).
        every = svc.repo.list_statements(
            project.project_id, account.account_id, ref.business_date, include_superseded=True
        )
        replaced_by = _replaced_by(svc, every)
        for st in sorted(every, key=lambda s: (s.statement_id, s.raw_key)):
            if st.statement_id in replaced_by:
                # Delivered, so listed for the controller; replaced, so none of its rows is read.
                files.extend(_superseded_accounting(st, ref.business_date, replaced_by[st.statement_id]))
                continue
            if st.days:  # a statement covering several days: this run reads its day's rows only
                for day in st.days_read_by(ref.business_date):
                    files.append(_day_accounting(st, day))
                    if day.parquet_key:
                        objects.append((day.parquet_key, day.rows))
                continue
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
                objects.append((st.parquet_key, st.rows_parsed))
    return objects, files


def _replaced_by(svc: Services, statements: list[Statement]) -> dict[str, str]:
    """Statement id -> raw key of the newer upload that replaced it (``statement_versions``), of the day's
    statements of one account."""
    keys = {s.statement_id: s.raw_key for s in statements}
    replaced = superseded(statements)
    for s in statements:
        if s.superseded_by is not None:
            replaced.setdefault(s.statement_id, s.superseded_by)
    return {old: keys.get(new) or _raw_key_of(svc, new) for old, new in replaced.items()}


def _raw_key_of(svc: Services, statement_id: str) -> str:
    """A stored mark's replacing statement not listed for the day (filed under another date): its raw key,
    else its id."""
    st = svc.repo.get_statement(statement_id)
    return st.raw_key if st is not None else statement_id


def _superseded_accounting(st: Statement, business_date: date, by: str) -> list[FileAccounting]:
    """A replaced file as the run lists it: its own figures (this day's, for a statement covering several
    days), status ``superseded`` and the file that replaced it; its errors say why it was quarantined."""
    if st.days:
        return [
            _day_accounting(st, day).model_copy(update={"status": SUPERSEDED, "superseded_by": by})
            for day in st.days_read_by(business_date)
        ]
    return [
        FileAccounting(
            raw_key=st.raw_key,
            source=st.source,
            account_id=st.account_id,
            status=SUPERSEDED,
            rows_read=st.rows_read,
            rows_parsed=st.rows_parsed,
            rows_skipped=st.rows_skipped,
            rows_rejected=st.rows_rejected,
            errors=[str(e) for e in st.errors[:20]],
            superseded_by=by,
        )
    ]


def _day_accounting(st: Statement, day: StatementDay) -> FileAccounting:
    """One covered day of a statement covering several days, as a run's file: that day's rows, the file's
    non-data lines on the day it is filed under; the runs of its days add up to the whole file."""
    return FileAccounting(
        raw_key=st.raw_key,
        source=st.source,
        account_id=st.account_id,
        status=st.status.value,
        rows_read=day.rows + day.rows_skipped,
        rows_parsed=day.rows,
        rows_skipped=day.rows_skipped,
        rows_rejected=0,
        day=day.day,
        file_rows_read=st.rows_read,
    )


def unavailable_accounts(project: Project, files: list[FileAccounting]) -> frozenset[str]:
    """Accounts whose statement for the day is incomplete (``statement_versions.incomplete_accounts``). Rows
    that would need them wait (recon.matching: ``awaiting-statement``) rather than become MISSING cases."""
    return frozenset(incomplete_accounts((a.account_id for a in project.accounts), files))


def _load_rows(
    svc: Services, project: Project, ref: RunRef, inputs: Inputs
) -> tuple[list[pa.Table], list[FileAccounting]]:
    objects, files = _day_statements(svc, project, ref)
    tables: list[pa.Table] = []
    for key, _ in objects:
        tables.append(read_parquet(svc.store.get(svc.settings.data_bucket, key)))
        inputs.objects.append((key, tables[-1].num_rows))
    return tables, files


def _previous_open_items_key(svc: Services, project_id: str, business_date: date) -> str | None:
    dated = [
        (d, o.key)
        for o in svc.store.list(svc.settings.data_bucket, open_items_prefix(project_id))
        if (d := parse_open_items_key(o.key)) is not None and d < business_date
    ]
    return max(dated)[1] if dated else None


def previous_open_items(
    svc: Services, project_id: str, business_date: date
) -> tuple[str | None, pa.Table | None]:
    """The latest open-items snapshot of a business date before this one (carry-over), and its key."""
    key = _previous_open_items_key(svc, project_id, business_date)
    return (key, read_table(svc, key)) if key is not None else (None, None)


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
    """The batches this run left open (not those it remembers as decided, ``Batch.decided``)."""
    key = open_batches_key(ref.project_id, ref.business_date)
    if svc.store.head(svc.settings.data_bucket, key) is None:
        return {}
    stored = batches_from_json(svc.store.get(svc.settings.data_bucket, key).decode())
    waiting = {rule: [b for b in bs if not b.decided] for rule, bs in stored.items()}
    return {rule: bs for rule, bs in waiting.items() if bs}


def input_objects(store: ObjectStore, bucket: str, ref: RunRef) -> Iterator[tuple[str, bytes]]:
    """The run's input objects (key, Parquet bytes) in placement order, each checked to hold the rows the
    run matched."""
    key = result_key(ref.project_id, ref.business_date, ref.run_id, INPUTS_FILE)
    inputs = Inputs.model_validate_json(store.get(bucket, key))
    for object_key, rows in inputs.objects:
        data = store.get(bucket, object_key)
        found = pq.read_metadata(io.BytesIO(data)).num_rows
        if found != rows:
            raise ValueError(f"{object_key} now holds {found} rows, the run matched {rows}")
        yield object_key, data


IDENTITY = pa.schema([pa.field("txn_uid", pa.string()), pa.field("txn_id", pa.string())])


def load_identity(store: ObjectStore, bucket: str, ref: RunRef) -> pa.Table:
    """txn_uid and txn_id of the run's rows, in placement order (read back from the inputs)."""
    parts = [
        pq.read_table(io.BytesIO(data), columns=IDENTITY.names)
        for _, data in input_objects(store, bucket, ref)
    ]
    return pa.concat_tables([IDENTITY.empty_table(), *parts], promote_options="permissive")


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


def open_snapshot(rows: pa.Table, result: MatchResult, unavailable: frozenset[str] = frozenset()) -> pa.Table:
    """The rows left open, as full rows with the business date each was first seen and the statements each
    waits for (``AWAITING_COLUMN``; ``unavailable``: the accounts whose statement the run lacked)."""
    return _snapshot(rows.take(pa.array(result.open_rows)), result, unavailable)


def _snapshot(open_rows: pa.Table, result: MatchResult, unavailable: frozenset[str]) -> pa.Table:
    business_date = result.business_date
    first_seen = pc.fill_null(open_rows[FIRST_SEEN].cast(pa.date32()), pa.scalar(business_date, pa.date32()))
    table = open_rows.set_column(open_rows.column_names.index(FIRST_SEEN), FIRST_SEEN, first_seen)
    previous = table[AWAITING_COLUMN] if AWAITING_COLUMN in table.column_names else None
    rules = result.placements["rule"].take(pa.array(result.open_rows))
    awaiting = next_awaiting(previous, rules, unavailable, business_date)
    if previous is not None:
        table = table.drop_columns([AWAITING_COLUMN])
    return table.append_column(AWAITING_COLUMN, awaiting)


PARTITIONS_DIR = "partitions/"
PLAN_FILE = "plan.json"


def _partition_key(ref: RunRef, name: str) -> str:
    return result_key(ref.project_id, ref.business_date, ref.run_id, PARTITIONS_DIR + name)


def _put(svc: Services, key: str, body: bytes, content_type: str) -> None:
    svc.store.put(svc.settings.data_bucket, key, body, content_type=content_type)


def _put_table(svc: Services, key: str, table: pa.Table) -> None:
    _put(svc, key, write_parquet(table), "application/vnd.apache.parquet")


@dataclass
class _Day:
    project: Project
    inputs: Inputs
    files: list[FileAccounting]
    carried_from: str | None
    carried_rows: int
    rows: pa.Table | None = None  # the day's rows, when a task loaded them all


class _PlanRecord(BaseModel):
    """What the plan task read, for the residual task (which reads only the open rows again)."""

    inputs: Inputs
    carried_from: str | None = None
    carried_rows: int = 0


def _load_day(svc: Services, request: RunRef) -> _Day:
    project = load_project(svc.store, svc.settings, request.project_id)
    inputs = Inputs()
    tables, files = _load_rows(svc, project, request, inputs)
    carried_from, carried = previous_open_items(svc, project.project_id, request.business_date)
    if carried_from is not None and carried is not None and carried.num_rows:
        inputs.objects.append((carried_from, carried.num_rows))
    rows = assemble(tables, carried)
    return _Day(project, inputs, files, carried_from, 0 if carried is None else carried.num_rows, rows)


def match_run(request: MatchInput, svc: Services) -> MatchOutput:
    """whole / plan / partition / residual (see ``MatchInput.mode``)."""
    if request.mode == "partition":
        return _match_one_partition(request, svc)
    if request.mode == "residual":
        return _match_the_residual(request, svc)
    if request.mode == "plan":
        planned = _plan_partitions(request, svc)
        if planned is not None:
            return planned
    day = _load_day(svc, request)
    assert day.rows is not None
    carried = _carried_batches(svc, day.carried_from)
    unavailable = unavailable_accounts(day.project, day.files)
    result = match_table(
        day.project,
        day.rows,
        request.business_date,
        carried_batches=carried,
        unavailable=unavailable,
    )
    return _store(request, svc, day, result, open_snapshot(day.rows, result, unavailable))


# --- a large day, partitioned: no task holds the whole day ------------------------------------------------
_BATCH_ROWS = 65_536  # rows decoded at a time from a Parquet object (its row groups may be the whole file)


def _slices(data: bytes, *, statement: bool, rows: int) -> Iterator[pa.Table]:
    """An object's rows, about ``rows`` at a time, as ``_load_day`` reads them (a statement object
    normalized as ``read_parquet`` does). An empty object gives one empty slice (its columns)."""
    file = pq.ParquetFile(io.BytesIO(data))
    flags: pa.Array | None = None
    if statement and not {"dedupe_key", "in_file_duplicate"} <= set(file.schema_arrow.names):
        # A version 1 object: read_parquet flags its duplicates over the whole file, so must a slice.
        flags = mark_duplicates(file.read(columns=["txn_id"]).column("txn_id"))
    start = 0

    def finish(batches: list[pa.RecordBatch]) -> pa.Table:
        table = pa.Table.from_batches(batches, schema=file.schema_arrow)
        if statement:
            table = normalized(table)
        if flags is not None:
            at = table.column_names.index("in_file_duplicate")
            table = table.set_column(at, table.field(at), flags.slice(start, table.num_rows))
        return table

    pending: list[pa.RecordBatch] = []
    for batch in file.iter_batches(batch_size=max(1, min(rows, _BATCH_ROWS))):
        pending.append(batch)
        if sum(b.num_rows for b in pending) >= rows:
            table = finish(pending)
            yield table
            start += table.num_rows
            pending = []
    if pending or start == 0:
        yield finish(pending)


def _object_repeats(data: bytes, *, statement: bool) -> npt.NDArray[np.int64]:
    """The object's in-file duplicates (rows of the object) whose first occurrence is in the object, as
    the whole day's prepare phase finds them: a file's statements are its own, so the first occurrence of
    a repeat is in the same object (the carried snapshot holds earlier days' statements only)."""
    file = pq.ParquetFile(io.BytesIO(data))
    names = file.schema_arrow.names
    none = np.zeros(0, np.int64)
    if statement and not {"dedupe_key", "in_file_duplicate"} <= set(names):
        table = file.read(columns=["statement_id", "txn_id"])
        flagged = mark_duplicates(table.column("txn_id"))
        key = "txn_id"
    elif "in_file_duplicate" in names:
        flagged = file.read(columns=["in_file_duplicate"]).column(0)
        key = "dedupe_key" if "dedupe_key" in names else "txn_id"
        table = None
    else:
        return none
    mask = np.asarray(pc.fill_null(flagged, False).to_numpy(zero_copy_only=False), bool)
    if not mask.any():
        return none
    if table is None:
        table = file.read(columns=["statement_id" if "statement_id" in names else "account_id", key])
    rows, _ = in_file_duplicates(mask, table.column(0), table.column(key), np.arange(len(mask)))
    return rows


def _conform(part: pa.Table, schema: pa.Schema) -> pa.Table:
    """A working-table slice in the partition objects' schema (a slice of another object may lack a column
    or hold it dictionary-encoded; the engine reads columns by name and values, never by type)."""
    columns = [
        (part[f.name] if f.name in part.column_names else pa.nulls(part.num_rows, f.type)).cast(f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _partition_schema(part: pa.Table) -> pa.Schema:
    def decoded(t: pa.DataType) -> pa.DataType:
        return t.value_type if pa.types.is_dictionary(t) else t

    return pa.schema([pa.field(f.name, decoded(f.type)) for f in part.schema])


def _plan_partitions(request: MatchInput, svc: Services) -> MatchOutput | None:
    """Split a large day into partitions (Parquet) listed in a manifest, for the Distributed Map; None for
    a day small enough to match in this task.

    The day is read an object at a time, and a large object a slice (a partition's rows) at a time: each
    slice is prepared, split by partition and appended to the partitions (Parquet writers in memory: the
    day compressed). Rows keep their day order, so a partition's rows are ascending by ``_pos``."""
    project = load_project(svc.store, svc.settings, request.project_id)
    statements, files = _day_statements(svc, project, request)
    carried_from = _previous_open_items_key(svc, project.project_id, request.business_date)
    carried = svc.store.get(svc.settings.data_bucket, carried_from) if carried_from else None
    carried_rows = pq.read_metadata(io.BytesIO(carried)).num_rows if carried is not None else 0
    objects = [(key, rows, True) for key, rows in statements]
    if carried_from is not None and carried_rows:
        objects.append((carried_from, carried_rows, False))
    total = sum(rows for _, rows, _ in objects)  # as the parse stage counted them: nothing read yet
    if total <= svc.settings.match_partition_rows:
        return None
    per = svc.settings.match_rows_per_partition
    n = -(-total // per)
    sinks = [io.BytesIO() for _ in range(n)]
    writers: list[pq.ParquetWriter] = []
    schema: pa.Schema | None = None
    inputs = Inputs()
    offset = 0
    for key, _, statement in objects:
        data = (
            carried if not statement and carried is not None else svc.store.get(svc.settings.data_bucket, key)
        )
        repeats = _object_repeats(data, statement=statement)
        read = 0
        for piece in _slices(data, statement=statement, rows=per):
            m = piece.num_rows
            rows = piece.append_column(
                "_pos", pa.array(np.arange(offset + read, offset + read + m), pa.int64())
            )
            mine = repeats[(repeats >= read) & (repeats < read + m)] - read
            for k, part in prepare_slice(project, rows, request.business_date, n, repeats=mine):
                if schema is None:
                    schema = _partition_schema(part)
                    if AWAITING_COLUMN not in schema.names:  # only the carried rows have it: keep it for them
                        schema = schema.append(pa.field(AWAITING_COLUMN, pa.string()))
                    writers = [pq.ParquetWriter(sink, schema, compression="zstd") for sink in sinks]
                writers[k].write_table(_conform(part, schema))
            read += m
            del rows, piece
        inputs.objects.append((key, read))
        offset += read
        del data
    for k, writer in enumerate(writers):
        writer.close()
        _put(
            svc,
            _partition_key(request, f"part-{k:04d}.parquet"),
            sinks[k].getvalue(),
            "application/vnd.apache.parquet",
        )
        sinks[k] = io.BytesIO()  # released as stored
    record = _PlanRecord(inputs=inputs, carried_from=carried_from, carried_rows=carried_rows)
    _put(svc, _partition_key(request, PLAN_FILE), record.model_dump_json().encode(), "application/json")
    manifest = _partition_key(request, "manifest.json")
    _put(svc, manifest, json.dumps([{"partition": k} for k in range(n)]).encode(), "application/json")
    _record_files(request, svc, project, files)
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
    """Merge the partitions' shares and match what they left: the same result as a whole run.

    Each share's placements are read only when the merge reaches them, so the task holds the merged
    placements and one share's, not every share's as well."""
    manifest = json.loads(svc.store.get(svc.settings.data_bucket, _partition_key(request, "manifest.json")))
    prefixes = [f"share-{int(item['partition']):04d}/" for item in manifest]
    shares: list[Share] = []
    for prefix in prefixes:
        tables = {
            n: read_table(svc, _partition_key(request, f"{prefix}{n}.parquet"))
            for n in ("groups", "cases", "residual")
        }
        batches = batches_from_json(
            svc.store.get(svc.settings.data_bucket, _partition_key(request, f"{prefix}batches.json")).decode()
        )
        shares.append(Share(pa.table({}), tables["groups"], tables["cases"], tables["residual"], batches))
        del tables
    project = load_project(svc.store, svc.settings, request.project_id)
    record = _PlanRecord.model_validate_json(
        svc.store.get(svc.settings.data_bucket, _partition_key(request, PLAN_FILE))
    )
    _, files = _day_statements(svc, project, request)  # the accounting: the repository, not the rows
    day = _Day(project, record.inputs, files, record.carried_from, record.carried_rows)
    unavailable = unavailable_accounts(project, files)
    rest = match_residual(
        project,
        [s.residual for s in shares if s.residual is not None],
        [s.batches or {} for s in shares],
        request.business_date,
        carried_batches=_carried_batches(svc, day.carried_from),
        unavailable=unavailable,
    )
    for share in shares:
        share.residual = None  # matched: released

    def placements(k: int) -> pa.Table:
        if k == len(prefixes):
            return rest.placements
        return read_table(svc, _partition_key(request, f"{prefixes[k]}placements.parquet"))

    rows = sum(n for _, n in record.inputs.objects)
    result = merge_results([*shares, rest], request.business_date, placements=placements, rows=rows)
    del shares
    return _store(request, svc, day, result, _open_rows(svc, day, result, unavailable))


def _open_rows(svc: Services, day: _Day, result: MatchResult, unavailable: frozenset[str]) -> pa.Table:
    """``open_snapshot(rows, result, unavailable)`` without the day's rows: the open rows taken from the
    inputs an object (and a slice of it) at a time."""
    open_rows = np.asarray(result.open_rows, np.int64)
    parts: list[pa.Table] = []
    offset = 0
    for key, rows in day.inputs.objects:
        wanted = open_rows[(open_rows >= offset) & (open_rows < offset + rows)] - offset
        data = svc.store.get(svc.settings.data_bucket, key)
        taken = []
        read = 0
        statement = key != day.carried_from
        for piece in _slices(data, statement=statement, rows=svc.settings.match_rows_per_partition):
            m = piece.num_rows
            taken.append(piece.take(pa.array(wanted[(wanted >= read) & (wanted < read + m)] - read)))
            read += m
        if read != rows:
            raise ValueError(f"{key} now holds {read} rows, the run matched {rows}")
        parts.append(pa.concat_tables(taken))
        offset += rows
        del data
    # As assemble() builds the day: statements' rows, then the carried ones, then first_seen if none had it.
    table = pa.concat_tables(parts or [NORMALIZED_SCHEMA.empty_table()], promote_options="permissive")
    if FIRST_SEEN not in table.column_names:
        table = table.append_column(FIRST_SEEN, pa.nulls(table.num_rows, pa.date32()))
    return _snapshot(table, result, unavailable)


def _store(
    request: MatchInput, svc: Services, day: _Day, result: MatchResult, open_items: pa.Table
) -> MatchOutput:
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
        batches_to_json(result.next_batches()).encode(),
        "application/json",
    )
    _put_table(svc, open_items_key(day.project.project_id, request.business_date), open_items)
    _record_files(request, svc, day.project, day.files)
    counts = result.counts()
    audit(
        svc,
        "system:match",
        "run.matched",
        request.run_id,
        rows=day.rows.num_rows if day.rows is not None else sum(rows for _, rows in day.inputs.objects),
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


def _not_delivered(svc: Services, project: Project, account_id: str, day: date) -> str:
    """Why the account has no statement for ``day``: none delivered, or a statement covering several days
    that is filed under another of them and read whole by that day's run: one stored before statements were
    split by day (recon.pipeline.statement_days; a split statement is listed for every day it covers)."""
    covering = [
        st
        for st in svc.repo.list_account_statements(project.project_id, account_id, ending_from=day)
        if st.status is StatementStatus.PARSED
        and (st.period_start or st.business_date) <= day <= (st.period_end or st.business_date)
    ]
    if not covering:
        return f"{account_id}: no statement delivered for {day}"
    st = covering[0]
    return (
        f"{account_id}: no statement is filed for {day}; {st.raw_key} covers {st.period_start} to "
        f"{st.period_end} and is read whole by the run of {st.business_date} (rows no batch of that day "
        "explains are carried as open items)"
        + (
            "; re-parse it to have each day it covers reconciled by that day's run, then run those days again"
            if st.source is Source.BANK and not st.days
            else ""
        )
    )


def _record_files(request: MatchInput, svc: Services, project: Project, files: list[FileAccounting]) -> None:
    run = svc.repo.get_run(request.run_id)
    if run is not None:
        run.files = files
        run.quarantined_files = sum(f.status == StatementStatus.QUARANTINED.value for f in files)
        problems = [
            f"{c.account_id}: {c.error} {c.cause or ''}".strip() for c in request.channels if c.failed
        ]
        delivered = {f.account_id for f in files if f.status != SUPERSEDED}
        problems += [
            _not_delivered(svc, project, a.account_id, statement_date_for(project, a, request.business_date))
            for a in project.accounts
            if a.account_id not in delivered
        ]
        problems += [
            f"{f.account_id}: {f.raw_key} quarantined ({f.errors[0] if f.errors else 'see its error report'})"
            for f in files
            if f.status == StatementStatus.QUARANTINED.value
        ]
        if unavailable_accounts(project, files):
            problems.append(
                "rows whose counterpart would be in a missing or quarantined statement are held open "
                "(awaiting-statement) until it arrives"
            )
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
