"""Rules shared by the AWS adapters and the in-memory fakes, so both behave the same (no boto3 here)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata
import zlib
from collections import Counter
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from recon.domain import Case, CaseStatus, MatchGroup, MemberRef, ReviewedDifference, Statement
from recon.money import format_amount
from recon.ports import CaseTransition, FetchLogEntry

from .errors import ItemTooLargeError

# --- cases -------------------------------------------------------------------------------------------------

#: Case states set by a person. A re-run keeps them while it finds the same difference under the case id; a
#: changed difference reopens the case (``merge_case``), a vanished one is kept closed (``retire_case``).
#: System states (open, auto_resolved) are replaced by what the latest attempt computed, except a closing by
#: a later run's case (``explained_by``), which holds while the difference it explains is unchanged.
REVIEW_STATUSES = frozenset({CaseStatus.IN_REVIEW, CaseStatus.RESOLVED})

REOPENED = "case.reopened"
RETIRED = "case.not_found"
FOUND_AGAIN = "case.found_again"


def check_results(run_id: str, groups: list[MatchGroup], cases: list[Case]) -> None:
    """``replace_results`` input must belong to the run and have unique ids."""
    for kind, ids, runs in (
        ("group", [g.group_id for g in groups], {g.run_id for g in groups}),
        ("case", [c.case_id for c in cases], {c.run_id for c in cases}),
    ):
        if runs - {run_id}:
            raise ValueError(
                f"{kind}s of runs {sorted(runs - {run_id})} passed to replace_results({run_id!r})"
            )
        dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate {kind} ids in replace_results({run_id!r}): {dupes[:5]}")


def _rows(refs: list[MemberRef]) -> list[tuple[str, int]]:
    return sorted((m.txn_uid, m.amount_minor) for m in refs)


def _uids(case: Case) -> set[str]:
    return {m.txn_uid for m in (*case.members, *case.counterpart)}


def same_difference(a: Case, b: Case) -> bool:
    """What a reviewer signs off: the type, the amount at stake and the rows on both sides with their
    amounts (not the wording of the reason or the evidence)."""
    return (a.type, a.delta_minor, a.currency, _rows(a.members), _rows(a.counterpart)) == (
        b.type,
        b.delta_minor,
        b.currency,
        _rows(b.members),
        _rows(b.counterpart),
    )


def _described(case: Case | ReviewedDifference) -> str:
    return f"{case.type.value} Δ {format_amount(case.delta_minor, case.currency)} {case.currency}"


def _reviewed(stored: Case, run_id: str) -> ReviewedDifference:
    return ReviewedDifference(
        status=stored.status,
        type=stored.type,
        delta_minor=stored.delta_minor,
        currency=stored.currency,
        members=[m.txn_id for m in stored.members],
        changed_by=run_id,
    )


def _changed_note(reviewed: ReviewedDifference, case: Case) -> str:
    """The note of an open case whose reviewed difference changed, always as the latest run finds it."""
    rows = "" if reviewed.members == [m.txn_id for m in case.members] else " on other rows"
    return (
        f"Changed since review: a reviewer had set it {reviewed.status.value} for {_described(reviewed)}; run "
        f"{case.run_id} finds {_described(case)}{rows}. Review it again."
    )


def _flagged(computed: Case, reviewed: ReviewedDifference | None) -> Case:
    if reviewed is None:
        return computed
    return computed.model_copy(
        update={"changed_since_review": reviewed, "system_note": _changed_note(reviewed, computed)}
    )


def merge_case(stored: Case | None, computed: Case) -> tuple[Case, CaseTransition | None]:
    """The case to store for ``computed`` when the table holds ``stored`` under its id (None: new), and the
    transition to audit when a decision (a person's, or a closing by a later run) no longer holds."""
    if stored is None:
        return computed, None
    same = same_difference(stored, computed)
    if stored.status in REVIEW_STATUSES:
        if same:  # still what the reviewer decided on; a signed-off change is answered (no flag)
            note = stored.system_note if stored.explained_by else ""
            kept = {"status": stored.status, "explained_by": stored.explained_by, "system_note": note}
            return computed.model_copy(update=kept), None
        reopened = _flagged(computed, _reviewed(stored, computed.run_id))
        return reopened, CaseTransition(REOPENED, stored, reopened)
    if stored.status is CaseStatus.AUTO_RESOLVED and stored.explained_by is not None:
        if same:
            kept = {
                "status": stored.status,
                "explained_by": stored.explained_by,
                "system_note": stored.system_note,
            }
            return computed.model_copy(update=kept), None
        by = stored.explained_by
        reopened = computed.model_copy(
            update={
                "system_note": f"Reopened by run {computed.run_id}: it was closed because case {by.case_id} "
                f"(run of {by.business_date}) explained {_described(stored)}; this run finds "
                f"{_described(computed)}. Check whether that case still explains it."
            }
        )
        return reopened, CaseTransition(REOPENED, stored, reopened)
    back = _flagged(computed, stored.changed_since_review)
    if stored.status is CaseStatus.AUTO_RESOLVED and stored.changed_since_review is not None:
        return back, CaseTransition(FOUND_AGAIN, stored, back)  # kept closed when not found, now found
    return back, None


def retire_case(stored: Case, run_id: str) -> tuple[Case, CaseTransition] | None:
    """A stored case the re-run ``run_id`` no longer finds: one a person decided on is kept, closed as
    auto_resolved with what the reviewer had marked, out of the run's case list (its rows are elsewhere now);
    None for any other (it is dropped with the earlier attempt's results)."""
    if stored.status not in REVIEW_STATUSES:
        return None
    retired = stored.model_copy(
        update={
            "status": CaseStatus.AUTO_RESOLVED,
            "changed_since_review": _reviewed(stored, run_id),
            "system_note": f"Not found again by run {run_id}: a reviewer had set it {stored.status.value} for "
            f"{_described(stored)}; the re-run no longer finds that difference (its rows are matched or in "
            "other cases now). Kept for the record and closed: nothing to do unless the re-run's inputs are "
            "wrong.",
        }
    )
    return retired, CaseTransition(RETIRED, stored, retired)


# --- ordering ----------------------------------------------------------------------------------------------


def also_filed_for(statement: Statement) -> list[date]:
    """The business dates besides its own a statement is listed for: those whose runs read one of the days
    it covers (a bank statement covering several days, ``Statement.days``)."""
    return sorted({d.business_date for d in statement.days} - {statement.business_date})


def account_sort_date(statement: Statement) -> date:
    """Where a statement sits in its account's sequence: the last day it covers (else its business date)."""
    return statement.period_end or statement.business_date


def sortable_instant(at: datetime) -> str:
    """Fixed-width UTC timestamp that sorts lexicographically in time order (naive = UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sortable_text_instant(at: str) -> str:
    """``sortable_instant`` of an ISO text; text that is not an ISO timestamp is used as it is."""
    try:
        return sortable_instant(datetime.fromisoformat(at))
    except ValueError:
        return at


def fetch_log_sort_key(entry: FetchLogEntry) -> str:
    return f"{sortable_text_instant(entry.at)}#{entry.attempt:06d}"


# --- fetch log (a dataclass, not a pydantic model) --------------------------------------------------------


def fetch_log_to_json(entry: FetchLogEntry) -> str:
    data = asdict(entry)
    data["bill_date"] = entry.bill_date.isoformat()
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def fetch_log_from_json(text: str) -> FetchLogEntry:
    data: dict[str, Any] = json.loads(text)
    data["bill_date"] = date.fromisoformat(data["bill_date"])
    return FetchLogEntry(**data)


# --- object metadata ---------------------------------------------------------------------------------------

_META_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ENCODED = re.compile(r"^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$")


def encode_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """User metadata as S3 stores it: lower-case keys, US-ASCII values.

    Non-ASCII values (Chinese file names) are stored RFC 2047 encoded (``=?UTF-8?B?...?=``), the form S3
    itself uses when it returns such values; ``decode_metadata`` reverses it.
    """
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        name = key.lower()
        if not _META_KEY.match(name):
            raise ValueError(f"invalid object metadata key {key!r} (use [a-z0-9._-])")
        if value.isascii() and value.isprintable():
            out[name] = value
        else:
            out[name] = "=?UTF-8?B?" + base64.b64encode(value.encode()).decode("ascii") + "?="
    return out


def decode_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        match = _ENCODED.match(value)
        out[key] = base64.b64decode(match.group(1)).decode() if match else value
    return out


# --- alerts ------------------------------------------------------------------------------------------------

SUBJECT_MAX = 100
MAX_MESSAGE_ATTRIBUTES = 10
MESSAGE_MAX_BYTES = 256 * 1024 - 4096  # SNS limit is 256 KiB for message + attributes: leave headroom
_ATTRIBUTE_NAME = re.compile(r"^(?!\.)(?!aws\.)(?!amazon\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9_.-]{1,256}$", re.I)


def alert_subject(subject: str) -> str:
    """An SNS e-mail subject: one line, no control characters, at most 100 characters (ellipsis if cut)."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in subject)
    cleaned = " ".join(cleaned.split())
    if len(cleaned) > SUBJECT_MAX:
        cleaned = cleaned[: SUBJECT_MAX - 1].rstrip() + "…"
    return cleaned


def alert_message(message: str) -> str:
    """The message, cut at a UTF-8 character boundary so that it fits SNS's size limit."""
    data = message.encode()
    if len(data) <= MESSAGE_MAX_BYTES:
        return message
    note = "\n…[truncated]"
    return data[: MESSAGE_MAX_BYTES - len(note.encode())].decode(errors="ignore") + note


def alert_attributes(attributes: dict[str, str] | None) -> dict[str, str]:
    """Validated string message attributes (SNS rejects empty values: they are left out)."""
    out = {k: v for k, v in (attributes or {}).items() if v != ""}
    if len(out) > MAX_MESSAGE_ATTRIBUTES:
        raise ValueError(f"at most {MAX_MESSAGE_ATTRIBUTES} message attributes, got {len(out)}")
    for name in out:
        if not _ATTRIBUTE_NAME.match(name):
            raise ValueError(f"invalid message attribute name {name!r}")
    return out


# --- e-mail ------------------------------------------------------------------------------------------------

MAX_RECIPIENTS = 50  # SES SendEmail limit per message


def check_recipients(sender: str, to: list[str]) -> list[str]:
    recipients = list(dict.fromkeys(r.strip() for r in to if r.strip()))
    if not sender.strip():
        raise ValueError("no sender address configured")
    if not recipients:
        raise ValueError("no recipients")
    if len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} recipients per message, got {len(recipients)}")
    return recipients


# --- workflow executions -----------------------------------------------------------------------------------

EXECUTION_NAME_MAX = 80
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def execution_name(name: str) -> str:
    """A Step Functions execution name from any text, deterministically: only ``[A-Za-z0-9_-]``, ≤ 80 chars.

    A name that had to be changed gets a short hash of the original, so two different names never collide
    after sanitising (``run:a/b`` and ``run:a-b`` stay distinct) and re-delivery of the same name maps to the
    same execution.
    """
    if not name:
        raise ValueError("execution name must not be empty")
    clean = _NOT_NAME.sub("-", name).strip("-") or "x"
    if clean == name and len(name) <= EXECUTION_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{clean[: EXECUTION_NAME_MAX - len(digest) - 1]}-{digest}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """ARN of a standard workflow's execution: ``...:stateMachine:<sm>`` -> ``...:execution:<sm>:<name>``."""
    prefix, sep, machine = state_machine_arn.partition(":stateMachine:")
    if not sep:
        raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
    return f"{prefix}:execution:{machine}:{name}"


COMPRESS_ABOVE = 350 * 1024
ITEM_LIMIT = 400 * 1024

Item = dict[str, Any]


def item_size(item: Item) -> int:
    """DynamoDB's size of an item of string attributes: UTF-8 length of every name and value."""
    return sum(len(name.encode()) + len(str(value).encode()) for name, value in item.items())


def encode_item(keys: Item, payload: str) -> Item:
    """``keys`` plus the payload as ``data``, or compressed as ``data_z`` when it is large."""
    item = {**keys, "data": payload}
    raw = len(payload.encode())
    if raw > COMPRESS_ABOVE:
        packed = base64.b64encode(zlib.compress(payload.encode(), 9)).decode("ascii")
        item = {**keys, "data_z": packed}
    size = item_size(item)
    if size > ITEM_LIMIT:
        raise ItemTooLargeError(
            f"{keys.get('type', 'item')} {keys['pk']} / {keys['sk']} is {size:,} bytes after compression "
            f"({raw:,} bytes of JSON); a DynamoDB item is limited to 400 KB ({ITEM_LIMIT:,} bytes)"
        )
    return item


def decode_payload(item: Item) -> str:
    if "data" in item:
        return str(item["data"])
    return zlib.decompress(base64.b64decode(str(item["data_z"]))).decode()
