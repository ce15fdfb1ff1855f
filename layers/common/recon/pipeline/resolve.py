"""Resolve stage: turn the match results into what people review — cases and suggested groups in the
repository (review status kept across re-runs), the run's accounting, the per-row CSV exports and the
small digest the report stage reads."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recon.domain import Case, CaseLink, CaseStatus, CaseType, MemberRef, Project, ResultsDigest
from recon.keys import REPORT_DATA_FILE, report_prefix, result_key
from recon.matching import with_identity
from recon.matching.context import BUILTIN_FILTER_DESCRIPTIONS
from recon.money import format_amount, to_decimal
from recon.ports import CaseTransition, CaseUpdate
from recon.reporting import cases_csv
from recon.reporting.export import CSV_CONTENT_TYPE, csv_bytes, minor_at_stake_by_type
from recon.reporting.masking import Masker
from recon.reporting.tabular import filtered_csv, matches_csv_chunks, open_items_csv
from recon.resolving import (
    RowDates,
    cases_from_tables,
    groups_from_tables,
    open_items,
    run_accounting,
    waiting_batches,
)
from recon.statement_versions import ingest_order

from .contracts import ResolveOutput, RunRef
from .match import IDENTITY, input_objects, open_batches, read_table, unavailable_accounts
from .overlap import OVERLAP_OF, OVERLAP_ROW
from .projects import load_project, run_id_for
from .run import RunNotFound, audit
from .services import Services

SAMPLE_GROUPS = 200
OPEN_ITEMS_SHOWN = 1000


def _counts(column: pa.ChunkedArray) -> dict[str, int]:
    return {str(c["values"]): int(c["counts"]) for c in pc.value_counts(column.cast(pa.string())).to_pylist()}


_MARKS = pa.schema([pa.field(OVERLAP_OF, pa.string()), pa.field(OVERLAP_ROW, pa.int32())])
_OWN = "statement_id"  # the statement a marked row belongs to: a mark naming a later one is a supersession
_MARKS_OWN = pa.schema([*_MARKS, pa.field(_OWN, pa.string())])


def _from_inputs(
    svc: Services, ref: RunRef, filtered: npt.NDArray[np.int64]
) -> tuple[pa.Table, pa.ChunkedArray, pa.ChunkedArray, pa.Table]:
    """One pass over the run's input objects (placement order): each placed row's identity (txn_uid,
    txn_id), booking time and value date, and for the ``filtered`` rows (placement positions, ascending) the
    earlier statement and row each repeats (``overlap_of``, ``overlap_row``; null where it repeats none).
    Only the filtered rows' marks are kept: the day is not held a second time."""
    identity: list[pa.Table] = [IDENTITY.empty_table()]
    booked: list[pa.Array] = []
    valued: list[pa.Array] = []
    marks: list[pa.Table] = []
    start = 0
    for _, data in input_objects(svc.store, svc.settings.data_bucket, ref):
        rows = pq.read_metadata(io.BytesIO(data)).num_rows
        lo, hi = np.searchsorted(filtered, [start, start + rows])
        # A carried open-items snapshot or an older object may lack the marks: its rows repeat none.
        marked = hi > lo and set(_MARKS.names) <= set(pq.read_schema(io.BytesIO(data)).names)
        columns = [*IDENTITY.names, "booked_at", "value_date", *(_MARKS_OWN.names if marked else [])]
        part = pq.read_table(io.BytesIO(data), columns=columns)
        identity.append(part.select(IDENTITY.names))
        booked.extend(c.cast(pa.timestamp("us", tz="UTC")) for c in part["booked_at"].chunks)
        valued.extend(c.cast(pa.date32()) for c in part["value_date"].chunks)
        if marked:
            at = pa.array(filtered[lo:hi] - start)
            marks.append(part.select(_MARKS_OWN.names).take(at).cast(_MARKS_OWN))
        elif hi > lo:
            marks.append(pa.table([pa.nulls(hi - lo, f.type) for f in _MARKS_OWN], schema=_MARKS_OWN))
        start += rows
    booked_at = pa.chunked_array(booked, pa.timestamp("us", tz="UTC"))
    return (
        pa.concat_tables(identity, promote_options="permissive"),
        booked_at,
        pa.chunked_array(valued, pa.date32()),
        pa.concat_tables([_MARKS_OWN.empty_table(), *marks]),
    )


def _with_files(svc: Services, marks: pa.Table) -> pa.Table:
    """``marks`` with each earlier statement named by its raw key, as the run's files are (its id when the
    repository no longer has it): a finance user can open the file and check the row."""
    ids = pa.array([i for i in pc.unique(marks[OVERLAP_OF]).to_pylist() if i is not None], pa.string())
    found = [svc.repo.get_statement(i) for i in ids.to_pylist()]
    keys = pa.array([s.raw_key if s else i for s, i in zip(found, ids.to_pylist(), strict=True)], pa.string())
    named = keys.take(pc.index_in(marks[OVERLAP_OF], value_set=ids))
    # A mark naming a statement ingested after the row's own: a later delivery replaced the row (another
    # content under the same key, recon.pipeline.overlap), it does not repeat it.
    marked = pc.is_valid(marks[OVERLAP_OF])
    own = [i for i in pc.unique(marks[_OWN].filter(marked)).to_pylist() if i is not None]
    known = {i: s for i, s in zip(ids.to_pylist(), found, strict=True) if s}
    known.update({i: s for i in own if i not in known and (s := svc.repo.get_statement(i))})
    ranked = pa.array(sorted(known, key=lambda i: ingest_order(known[i])), pa.string())
    rank_of, rank_own = (pc.index_in(marks[c], value_set=ranked) for c in (OVERLAP_OF, _OWN))
    later = pc.if_else(marked, pc.fill_null(pc.greater(rank_of, rank_own), False), None)
    marks = marks.set_column(marks.column_names.index(OVERLAP_OF), OVERLAP_OF, named)
    return marks.drop_columns([_OWN]).append_column("superseded", later)


def _left_sources(project: Project) -> dict[str, list[str]]:
    """Rule name -> the sources on its left side (the evidence shows the left row first)."""
    return {r.name: list(r.left) for r in project.match_rules if hasattr(r, "left")}


def _brief(case: Case) -> dict[str, object]:
    """A case as an audit event records it (before / after)."""
    return {
        "status": case.status.value,
        "type": case.type.value,
        "delta": str(to_decimal(case.delta_minor, case.currency)),
        "currency": case.currency,
        "members": [m.txn_id for m in case.members],
    }


def _rows(refs: list[MemberRef]) -> str:
    return ", ".join(
        f"{m.source.value} {m.txn_id} {format_amount(m.amount_minor, m.currency)} {m.currency}" for m in refs
    )


def _audit_transition(svc: Services, ref: RunRef, change: CaseTransition) -> None:
    """A person's decision the re-run set aside (reopened, or kept closed as no longer found)."""
    audit(
        svc,
        f"system:resolve:{ref.run_id}",
        change.action,
        change.case_id,
        run_id=ref.run_id,
        before=_brief(change.before),
        after=_brief(change.after),
        note=change.after.system_note,
    )


def _close_explained(svc: Services, ref: RunRef, cases: list[Case]) -> None:
    """Earlier runs' cases this run's cases explain (a late payout pays a day reported MISSING_IN_BANK):
    an open one is closed (auto_resolved), one in review gets the explanation as a note and keeps its status;
    a closed one is left alone (a person's decision, or closed already)."""
    listed: dict[str, dict[str, Case]] = {}  # run id -> its cases by id (read once per earlier run)
    for case in cases:
        for link in case.closes:
            run_id = run_id_for(ref.project_id, link.business_date)
            if run_id not in listed:
                listed[run_id] = {c.case_id: c for c in svc.repo.list_cases(run_id)}
            earlier = listed[run_id].get(link.case_id)
            if earlier is None or earlier.status not in (CaseStatus.OPEN, CaseStatus.IN_REVIEW):
                continue
            explained_by = CaseLink(case_id=case.case_id, business_date=ref.business_date)
            if earlier.explained_by == explained_by:
                continue  # noted by an earlier attempt of this run
            why = (
                f"its case {case.case_id} ({case.type.value}) links {_rows(case.members)} to "
                f"{_rows(case.counterpart)}, which is what this case missed"
            )
            status = CaseStatus.AUTO_RESOLVED if earlier.status is CaseStatus.OPEN else earlier.status
            # A late payout off the day's net (AMOUNT_MISMATCH) pays the day: only the later case's Δ is open.
            rest = ("Nothing is missing", "reopen it", "close it")
            if case.type is CaseType.AMOUNT_MISMATCH:
                gap = f"{format_amount(abs(case.delta_minor), case.currency)} {case.currency}"
                side = "short" if case.delta_minor < 0 else "over"
                rest = (
                    f"The day is paid, {gap} {side}: that difference is case {case.case_id}'s to follow up",
                    "reopen this case",
                    "close this case",
                )
            note = (
                f"Closed automatically by run {ref.run_id}: {why}. {rest[0]}; {rest[1]} only if you disagree."
                if status is CaseStatus.AUTO_RESOLVED
                else f"Run {ref.run_id} found the explanation: {why}. {rest[0]}: {rest[2]} if you agree."
            )
            updated = svc.repo.update_case(
                run_id,
                earlier.case_id,
                if_status=earlier.status,
                changes=CaseUpdate(status=status, explained_by=explained_by, system_note=note),
            )
            if updated is None:
                continue  # a person changed it meanwhile: their decision stands
            audit(
                svc,
                f"system:resolve:{ref.run_id}",
                "case.auto_resolved" if status is CaseStatus.AUTO_RESOLVED else "case.noted",
                earlier.case_id,
                run_id=run_id,
                explained_by=case.case_id,
                explained_by_run=ref.run_id,
                before=_brief(earlier),
                after=_brief(updated),
                note=note,
            )


def resolve_run(ref: RunRef, svc: Services) -> ResolveOutput:
    project = load_project(svc.store, svc.settings, ref.project_id)  # the project must still exist
    masker = Masker.for_project(project)
    left = _left_sources(project)

    def key(name: str) -> str:
        return result_key(ref.project_id, ref.business_date, ref.run_id, name)

    groups = read_table(svc, key("groups.parquet"))
    case_table = read_table(svc, key("cases.parquet"))
    placed = read_table(svc, key("placements.parquet"))
    # Identity; booking times, for the evidence of TIME_MISMATCH cases and of the groups the report shows;
    # the statement and row each filtered row repeats, for filtered.csv: one read of the inputs.
    filtered = np.flatnonzero(
        pc.fill_null(pc.equal(placed["disposition"], "filtered"), False).to_numpy(zero_copy_only=False)
    )
    identity, booked_at, value_date, repeats = _from_inputs(svc, ref, filtered)
    placements = with_identity(placed, identity, groups, case_table).append_column("booked_at", booked_at)
    placements = placements.append_column("value_date", value_date)
    del identity  # its chunks: placements holds a contiguous copy (2M ids are ~90 MiB)
    accounting = run_accounting(placements, ref.business_date)  # raises if a row is not in exactly one place
    # Declared account numbers are masked before anything is stored or written (repository, digest, CSV).
    cases = [
        masker.case(c)
        for c in cases_from_tables(
            ref.run_id, case_table, placements, timezone=project.timezone, left_sources=left
        )
    ]
    is_suggested = pc.equal(groups["status"], "suggested")
    suggested = [
        masker.group(g)
        for g in groups_from_tables(
            ref.run_id, groups.filter(is_suggested), placements, timezone=project.timezone, left_sources=left
        )
    ]
    for change in svc.repo.replace_results(ref.run_id, suggested, cases):
        _audit_transition(svc, ref, change)
    # What the repository holds (a kept review status, a reopened case's flag) is what the exports show.
    stored = {c.case_id: c for c in svc.repo.list_cases(ref.run_id)}
    cases = [stored.get(c.case_id, c) for c in cases]
    _close_explained(svc, ref, cases)
    others = groups.filter(pc.invert(is_suggested)).slice(0, max(0, SAMPLE_GROUPS - len(suggested)))
    run = svc.repo.get_run(ref.run_id)
    if run is None:
        raise RunNotFound(ref.run_id)
    items = open_items(placements, ref.business_date)
    # Settlement batches left waiting are open items too (report, open_items.csv, the counts); the files the
    # match stage recorded say which statements it was told are missing.
    waiting = waiting_batches(
        open_batches(svc, ref), project, ref.business_date, unavailable_accounts(project, run.files)
    )
    shown = [
        masker.group(g)
        for g in groups_from_tables(
            ref.run_id, others, placements, timezone=project.timezone, left_sources=left
        )
    ]
    digest = ResultsDigest(
        run_id=ref.run_id,
        groups_by_rule=dict(sorted(_counts(groups["rule"]).items())) if groups.num_rows else {},
        groups_by_pass=dict(sorted(_counts(groups["match_pass"]).items())) if groups.num_rows else {},
        suggested_groups=len(suggested),
        sample_groups=(suggested + shown)[:SAMPLE_GROUPS],
        open_items=[
            o.model_copy(update={"txn_id": masker.text(o.txn_id)})
            for o in (waiting + items)[:OPEN_ITEMS_SHOWN]
        ],
        open_items_total=len(waiting) + len(items),
    )
    bucket = svc.settings.data_bucket
    svc.store.put(
        bucket, key(REPORT_DATA_FILE), digest.model_dump_json().encode(), content_type="application/json"
    )
    prefix = report_prefix(ref.project_id, ref.business_date, ref.run_id)
    masks = masker.pairs
    # matches.csv holds a line per matched row (1.1 GB of text at 1M x 1M): streamed, never held whole.
    svc.store.put_stream(
        bucket,
        prefix + "matches.csv",
        matches_csv_chunks(placements, groups, masks),
        content_type=CSV_CONTENT_TYPE,
    )
    dates = RowDates.from_placements(placements, {c.case_id for c in cases}, project.timezone)
    for name, body in (
        # The masked cases as stored: with the review status the repository kept for each.
        ("cases.csv", csv_bytes(cases_csv(svc.repo.list_cases(ref.run_id), dates))),
        (
            "filtered.csv",
            filtered_csv(
                placements,
                masks,
                descriptions=BUILTIN_FILTER_DESCRIPTIONS
                | {r.name: r.description for r in project.filter_rules if r.description},
                repeats=_with_files(svc, repeats),
            ),
        ),
        ("open_items.csv", open_items_csv(placements, ref.business_date, masks, waiting)),
    ):
        svc.store.put(bucket, prefix + name, body, content_type=CSV_CONTENT_TYPE)
    by_type = Counter(c.type.value for c in cases)
    run.sources = accounting
    run.match_groups = groups.num_rows
    run.suggested_groups = len(suggested)
    run.open_items = len(waiting) + len(items)
    run.groups_by_pass = digest.groups_by_pass
    run.cases_by_type = dict(sorted(by_type.items()))
    # Absolute amount at stake (a 长款 and a 短款 add up), in the project's currency.
    run.case_minor_by_type = minor_at_stake_by_type(cases, project.currency)
    svc.repo.put_run(run)
    audit(
        svc,
        "system:resolve",
        "run.resolved",
        ref.run_id,
        cases=len(cases),
        by_type=dict(by_type),
        suggested_groups=len(suggested),
        open_items=run.open_items,
    )
    return ResolveOutput(
        run_id=ref.run_id,
        project_id=ref.project_id,
        business_date=ref.business_date,
        cases=len(cases),
        cases_by_type=run.cases_by_type,
    )
