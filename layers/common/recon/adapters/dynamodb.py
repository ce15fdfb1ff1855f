"""``RunRepository`` on one DynamoDB table (single-table design).

Table (infra/template.yaml declares exactly this)::

    BillingMode            PAY_PER_REQUEST
    AttributeDefinitions   pk S, sk S, gsi1pk S, gsi1sk S
    KeySchema              pk HASH, sk RANGE
    GlobalSecondaryIndexes gsi1: gsi1pk HASH, gsi1sk RANGE, Projection ALL

Items (every item: ``pk``, ``sk``, ``type``, ``data`` = the model's ``model_dump(mode="json")`` as a JSON
string, or ``data_z`` = the same JSON zlib-compressed and base64-encoded when it is large)::

    type       pk                                        sk                       gsi1pk / gsi1sk
    run        RUN#<run_id>                              META                     PROJECT#<project_id> /
                                                                                  RUN#<business_date>#<run_id>
    group      RUN#<run_id>                              GROUP#<group_id>         -
    case       RUN#<run_id>                              CASE#<case_id>           CASE#<case_id> /
                                                                                  RUN#<run_id>
    (kept)     RUN#<run_id>                              RETIRED#<case_id>        CASE#<case_id> /
                                                                                  RUN#<run_id>
    statement  STMT#<project>#<account>#<business_date>  STMT#<statement_id>      ACCOUNT#<project>#<account> /
                                                                                  STMT#<period_end>#<statement_id>
    (copy)     STMT#<project>#<account>#<other date>     STMT#<statement_id>      -
    checksum   CHECKSUM#<project>#<account>#<sha256>     META                     -
    stmt id    STMTID#<statement_id>                     META                     -
    audit      AUDIT#<subject>                           <utc at>#<event_id>      -
    claim      CLAIM#<notification subject>              <claim key>              -
    fetch      FETCH#<project>#<account>#<bill_date>     <utc at>#<attempt:06d>   -

Top-level attributes besides the keys, for queries and the console: ``status`` (run, group, case,
statement, fetch), ``project_id``/``business_date`` (run), ``case_type``/``severity`` (case),
``checksum``/``raw_key``/``source`` (statement), ``statement_id``/``statement_pk`` (checksum marker),
``action``/``actor`` (audit), ``claimed_at``/``run_id``/``execution`` (claim).

- A case's top-level ``status`` is authoritative (a review may update just that attribute); reads apply it.
  ``replace_results`` reads the stored cases whole: a review status holds only while the case's difference
  is the same (``_shared.merge_case``). A reviewed case a re-run no longer finds moves to ``RETIRED#``
  (closed, kept for the record, found by ``get_case``, not listed by ``list_cases``).
- ``update_case`` (a later run closes an earlier run's case) is GetItem + PutItem conditional on the status
  read, so a person's decision taken in between wins.
- ``<utc at>`` is fixed-width UTC (``2024-05-01T02:30:00.000000Z``) so sort keys sort in time order.
- The checksum marker points to the last statement stored with those bytes whose status is not
  ``duplicate``; a ``duplicate`` statement never moves it.
- A bank statement covering several days (``Statement.days``) is also stored, whole, under the business
  date of each other day it covers (``filed_pk`` names its own item), so ``list_statements`` of any of those
  days finds it with one query; every write rewrites all its copies. A copy under a date the statement no
  longer covers after a re-parse is rewritten with the current record and left out of that date's list.
- A statement's ``gsi1`` keys list an account's statements in sequence (``<period_end>`` falls back to the
  business date); ``duplicate`` and superseded statements (top-level ``superseded_by``: a newer upload
  replaced them, ``recon.statement_versions``) are left out of that sequence. The ``STMTID`` marker finds a
  statement by its id (re-parse).
- Account numbers: models serialise the masked number only (``Account`` serialiser, ``SecretStr``); no
  attribute is written from anything but that JSON and ids.
- Size: DynamoDB items are limited to 400 KB. JSON larger than ``COMPRESS_ABOVE`` (350 KB) is stored
  compressed (``data_z``). A match-group member is ~190 bytes of JSON (realistic 28-digit channel ids) and
  ~37 bytes compressed + base64, so groups of up to ~1,900 members are stored plain and up to ~11,000
  compressed. Beyond that (or any item over 400 KB even compressed) ``ItemTooLargeError`` is raised: split
  such a group, or keep its member list in S3 and store the key.
- A notification claim (subject ``notify:<project>:<date>``, key ``<fingerprint>#<event id of the
  notification it follows | first>``, ``recon.reporting.notices``) is one conditional PutItem: stored when
  absent, held by the same execution or claimed before the lease; otherwise the holder comes back with the
  refusal (``ReturnValuesOnConditionCheckFailure``), so no read is needed. Claims are never deleted.
- ``replace_results`` uses BatchWriteItem (not a transaction): a concurrent reader may see a mix of the
  old and new results for a moment; the end state is the same however often it is repeated.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError
from pydantic import BaseModel

from recon.domain import AuditEvent, Case, CaseStatus, MatchGroup, Run, Source, Statement, StatementStatus
from recon.ports import CaseTransition, CaseUpdate, FetchLogEntry, NotificationClaim
from recon.settings import get_settings
from recon.statement_versions import current_statements

from . import aws
from ._shared import (
    Item,
    account_sort_date,
    also_filed_for,
    check_results,
    decode_payload,
    encode_item,
    fetch_log_from_json,
    fetch_log_sort_key,
    fetch_log_to_json,
    merge_case,
    retire_case,
    sortable_instant,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

GSI1 = "gsi1"
META = "META"
_DESERIALIZE = TypeDeserializer()


def table_spec(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments of the table this adapter expects (local runtime and tests use it)."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI1,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


M = TypeVar("M", bound=BaseModel)


# --- keys --------------------------------------------------------------------------------------------------


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def statement_pk(project_id: str, account_id: str, business_date: date) -> str:
    return f"STMT#{project_id}#{account_id}#{business_date.isoformat()}"


def checksum_pk(project_id: str, account_id: str, checksum: str) -> str:
    return f"CHECKSUM#{project_id}#{account_id}#{checksum}"


def statement_id_pk(statement_id: str) -> str:
    return f"STMTID#{statement_id}"


def account_pk(project_id: str, account_id: str) -> str:
    return f"ACCOUNT#{project_id}#{account_id}"


def fetch_pk(project_id: str, account_id: str, bill_date: date) -> str:
    return f"FETCH#{project_id}#{account_id}#{bill_date.isoformat()}"


def claim_pk(subject: str) -> str:
    return f"CLAIM#{subject}"


def _model(cls: type[M], item: Item) -> M:
    return cls.model_validate_json(decode_payload(item))


def _case(item: Item) -> Case:
    case = _model(Case, item)
    status = item.get("status")
    if status and status != case.status:
        return case.model_copy(update={"status": CaseStatus(str(status))})
    return case


CASE = "CASE#"
RETIRED = "RETIRED#"  # a reviewed case a re-run no longer found, kept closed (``_shared.retire_case``)


def _case_item(pk: str, prefix: str, case: Case) -> Item:
    keys = {
        "pk": pk,
        "sk": prefix + case.case_id,
        "gsi1pk": f"CASE#{case.case_id}",
        "gsi1sk": pk,
        "type": "case",
        "status": case.status.value,
        "case_type": case.type.value,
        "severity": case.severity.value,
    }
    return encode_item(keys, case.model_dump_json())


class DynamoRunRepository:
    """DynamoDB implementation of ``recon.ports.RunRepository`` (see the module docstring for the schema)."""

    def __init__(
        self, table_name: str | None = None, *, table: Table | None = None, page_size: int | None = None
    ) -> None:
        self._table_name = table_name
        self._table = table
        self._page_size = page_size  # Limit per Query page (tests use small pages to exercise paging)

    @property
    def table(self) -> Table:
        if self._table is None:
            name = self._table_name or get_settings().table_name
            self._table = aws.resource("dynamodb").Table(name)
        return self._table

    # --- queries -------------------------------------------------------------------------------------------

    def _query(self, *, limit: int | None = None, **kwargs: Any) -> Iterator[Item]:
        """Every item of a query, following ``LastEvaluatedKey`` (stops after ``limit`` items)."""
        returned = 0
        while True:
            page_kwargs = dict(kwargs)
            page_limit = self._page_size
            if limit is not None:
                page_limit = min(page_limit or limit, limit - returned)
            if page_limit:
                page_kwargs["Limit"] = page_limit
            response = self.table.query(**page_kwargs)
            for item in response.get("Items", []):
                yield item
                returned += 1
                if limit is not None and returned >= limit:
                    return
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def _children(self, run_id: str, prefix: str) -> Iterator[Item]:
        return self._query(
            KeyConditionExpression=Key("pk").eq(run_pk(run_id)) & Key("sk").begins_with(prefix),
            ConsistentRead=True,
        )

    # --- runs ----------------------------------------------------------------------------------------------

    def put_run(self, run: Run) -> None:
        keys = {
            "pk": run_pk(run.run_id),
            "sk": META,
            "gsi1pk": f"PROJECT#{run.project_id}",
            "gsi1sk": f"RUN#{run.business_date.isoformat()}#{run.run_id}",
            "type": "run",
            "status": run.status.value,
            "project_id": run.project_id,
            "business_date": run.business_date.isoformat(),
        }
        self.table.put_item(Item=encode_item(keys, run.model_dump_json()))

    def get_run(self, run_id: str) -> Run | None:
        item = self.table.get_item(Key={"pk": run_pk(run_id), "sk": META}, ConsistentRead=True).get("Item")
        return _model(Run, item) if item else None

    def list_runs(self, project_id: str, limit: int = 50) -> list[Run]:
        """The project's runs, newest business date first (GSI: eventually consistent)."""
        if limit <= 0:
            return []
        items = self._query(
            IndexName=GSI1,
            KeyConditionExpression=Key("gsi1pk").eq(f"PROJECT#{project_id}")
            & Key("gsi1sk").begins_with("RUN#"),
            ScanIndexForward=False,
            limit=limit,
        )
        return [_model(Run, item) for item in items]

    # --- statements ----------------------------------------------------------------------------------------

    def put_statement(self, statement: Statement) -> None:
        pk = statement_pk(statement.project_id, statement.account_id, statement.business_date)
        sk = f"STMT#{statement.statement_id}"
        keys = {
            "pk": pk,
            "sk": sk,
            "type": "statement",
            "status": statement.status.value,
            "source": statement.source.value,
            "checksum": statement.checksum,
            "raw_key": statement.raw_key,
        }
        if statement.superseded_by:
            keys["superseded_by"] = statement.superseded_by
        elif statement.status != StatementStatus.DUPLICATE:
            keys["gsi1pk"] = account_pk(statement.project_id, statement.account_id)
            keys["gsi1sk"] = f"STMT#{account_sort_date(statement).isoformat()}#{statement.statement_id}"
        data = statement.model_dump_json()
        # A statement covering several days is also stored under the business date of each other day it
        # covers (no gsi1 keys: the account's sequence lists it once). A date it was stored under before and
        # no longer covers (a re-parse read other days) gets the new copy too, which no longer claims it.
        dates = also_filed_for(statement)
        if statement.days or statement.source is Source.BANK:  # only bank statements are split by day
            before = self.table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")
            if before:
                dates = sorted({*dates, *also_filed_for(_model(Statement, before))})
        for day in dates:
            copy = {k: v for k, v in keys.items() if k not in ("gsi1pk", "gsi1sk")}
            copy["pk"] = statement_pk(statement.project_id, statement.account_id, day)
            copy["filed_pk"] = pk
            self.table.put_item(Item=encode_item(copy, data))
        self.table.put_item(Item=encode_item(keys, data))
        self.table.put_item(
            Item={
                "pk": statement_id_pk(statement.statement_id),
                "sk": META,
                "type": "statement_id",
                "statement_pk": pk,
                "statement_sk": sk,
            }
        )
        if statement.status != StatementStatus.DUPLICATE:
            self.table.put_item(
                Item={
                    "pk": checksum_pk(statement.project_id, statement.account_id, statement.checksum),
                    "sk": META,
                    "type": "checksum",
                    "statement_id": statement.statement_id,
                    "statement_pk": pk,
                    "statement_sk": sk,
                }
            )

    def find_statement_by_checksum(self, project_id: str, account_id: str, checksum: str) -> Statement | None:
        return self._statement_via(checksum_pk(project_id, account_id, checksum))

    def list_statements(
        self, project_id: str, account_id: str, business_date: date, *, include_superseded: bool = False
    ) -> list[Statement]:
        """The day's statements of the account that count (superseded versions too on request)."""
        items = self._query(
            KeyConditionExpression=Key("pk").eq(statement_pk(project_id, account_id, business_date))
            & Key("sk").begins_with("STMT#"),
            ConsistentRead=True,
        )
        # A copy under a date its statement no longer covers (a re-parse read other days) does not count.
        statements = [st for st in (_model(Statement, item) for item in items) if st.filed_for(business_date)]
        return statements if include_superseded else current_statements(statements)

    def get_statement(self, statement_id: str) -> Statement | None:
        return self._statement_via(statement_id_pk(statement_id))

    def _statement_via(self, marker_pk: str) -> Statement | None:
        """The statement a marker item (checksum or statement id) points at."""
        marker = self.table.get_item(Key={"pk": marker_pk, "sk": META}, ConsistentRead=True).get("Item")
        if not marker:
            return None
        item = self.table.get_item(
            Key={"pk": marker["statement_pk"], "sk": marker["statement_sk"]}, ConsistentRead=True
        ).get("Item")
        return _model(Statement, item) if item else None

    def list_account_statements(
        self,
        project_id: str,
        account_id: str,
        *,
        ending_from: date | None = None,
        ending_to: date | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> list[Statement]:
        """The account's statements in sequence (GSI ``gsi1``: eventually consistent)."""
        if limit is not None and limit <= 0:
            return []
        low = f"STMT#{ending_from.isoformat()}#" if ending_from else "STMT#"
        high = f"STMT#{ending_to.isoformat()}$" if ending_to else "STMT$"  # "$" sorts right after "#"
        items = self._query(
            IndexName=GSI1,
            KeyConditionExpression=Key("gsi1pk").eq(account_pk(project_id, account_id))
            & Key("gsi1sk").between(low, high),
            ScanIndexForward=not newest_first,
            limit=limit,
        )
        return [_model(Statement, item) for item in items]

    # --- results -------------------------------------------------------------------------------------------

    def replace_results(
        self, run_id: str, groups: list[MatchGroup], cases: list[Case]
    ) -> list[CaseTransition]:
        """Store exactly ``groups`` and ``cases`` for the run; a reviewed case keeps its status while its
        difference is unchanged, and is kept (``RETIRED#``) when the run no longer finds it."""
        check_results(run_id, groups, cases)
        stored: dict[str, Case] = {}  # case id -> as stored (CASE# or RETIRED#)
        retired_before: set[str] = set()
        stale: set[str] = set()
        pk = run_pk(run_id)
        for prefix in ("GROUP#", CASE, RETIRED):
            # Stored cases are read whole: whether a review still holds depends on their difference.
            projection: dict[str, Any] = (
                {"ProjectionExpression": "sk"}
                if prefix == "GROUP#"
                else {
                    "ProjectionExpression": "sk, #s, #d, data_z",
                    "ExpressionAttributeNames": {"#s": "status", "#d": "data"},
                }
            )
            for item in self._query(
                KeyConditionExpression=Key("pk").eq(pk) & Key("sk").begins_with(prefix),
                ConsistentRead=True,
                **projection,
            ):
                sk = str(item["sk"])
                stale.add(sk)
                if prefix != "GROUP#":
                    stored[sk.removeprefix(prefix)] = _case(item)
                    if prefix == RETIRED:
                        retired_before.add(sk.removeprefix(prefix))

        transitions: list[CaseTransition] = []
        new_items: list[Item] = []
        for group in groups:
            keys = {"pk": pk, "sk": f"GROUP#{group.group_id}", "type": "group", "status": group.status.value}
            new_items.append(encode_item(keys, group.model_dump_json()))
        found = {c.case_id for c in cases}
        for case in cases:
            kept, change = merge_case(stored.get(case.case_id), case)
            transitions += [change] if change else []
            new_items.append(_case_item(pk, CASE, kept))
        for case_id in sorted(set(stored) - found):
            if case_id in retired_before:
                stale.discard(RETIRED + case_id)  # retired by an earlier attempt: stays as it was
            elif retired := retire_case(stored[case_id], run_id):
                new_items.append(_case_item(pk, RETIRED, retired[0]))
                transitions.append(retired[1])

        stale -= {str(item["sk"]) for item in new_items}
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for item in new_items:
                batch.put_item(Item=item)
            for sk in sorted(stale):
                batch.delete_item(Key={"pk": pk, "sk": sk})
        return sorted(transitions, key=lambda t: t.case_id)

    def list_match_groups(self, run_id: str) -> list[MatchGroup]:
        return [_model(MatchGroup, item) for item in self._children(run_id, "GROUP#")]

    def list_cases(self, run_id: str) -> list[Case]:
        return [_case(item) for item in self._children(run_id, "CASE#")]

    def get_case(self, case_id: str) -> Case | None:
        """The case with this id (GSI ``gsi1``, eventually consistent); None if there is none.

        Case ids are expected to be unique across runs; should several runs hold the same id, the one of the
        greatest run id is returned.
        """
        for item in self._query(
            IndexName=GSI1,
            KeyConditionExpression=Key("gsi1pk").eq(f"CASE#{case_id}"),
            ScanIndexForward=False,
            limit=1,
        ):
            return _case(item)
        return None

    def update_case(
        self, run_id: str, case_id: str, *, if_status: CaseStatus, changes: CaseUpdate
    ) -> Case | None:
        """GetItem, then a PutItem conditional on the status read (no UpdateItem: the payload is JSON)."""
        pk = run_pk(run_id)
        item = self.table.get_item(Key={"pk": pk, "sk": CASE + case_id}, ConsistentRead=True).get("Item")
        if not item:
            return None
        case = _case(item)
        if case.status is not if_status:
            return None
        updated = case.model_copy(update=changes.fields())
        try:
            self.table.put_item(
                Item=_case_item(pk, CASE, updated), ConditionExpression=Attr("status").eq(if_status.value)
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            return None
        return updated

    # --- audit ---------------------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        """Append the event; appending the same event (same subject, time and id) again changes nothing."""
        keys = {
            "pk": f"AUDIT#{event.subject}",
            "sk": f"{sortable_instant(event.at)}#{event.event_id}",
            "type": "audit",
            "action": event.action,
            "actor": event.actor,
        }
        try:
            self.table.put_item(
                Item=encode_item(keys, event.model_dump_json()), ConditionExpression=Attr("pk").not_exists()
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise

    def list_audit(self, subject: str) -> list[AuditEvent]:
        """The subject's events, oldest first."""
        items = self._query(KeyConditionExpression=Key("pk").eq(f"AUDIT#{subject}"), ConsistentRead=True)
        return [_model(AuditEvent, item) for item in items]

    # --- notification claims -------------------------------------------------------------------------------

    def claim_notification(
        self, claim: NotificationClaim, *, stale_before: datetime
    ) -> NotificationClaim | None:
        """One conditional PutItem (see the module docstring); the holder when the condition fails."""
        item: Item = {
            "pk": claim_pk(claim.subject),
            "sk": claim.key,
            "type": "claim",
            "claimed_at": sortable_instant(claim.at),
            "run_id": claim.run_id,
        }
        condition = Attr("pk").not_exists() | Attr("claimed_at").lt(sortable_instant(stale_before))
        if claim.execution is not None:
            item["execution"] = claim.execution
            condition |= Attr("execution").eq(claim.execution)
        try:
            self.table.put_item(
                Item=item, ConditionExpression=condition, ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
            return None
        except ClientError as exc:
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            # The refusal carries the holder in the low-level form (the resource layer converts results only).
            raw: dict[str, Any] = exc.response["Item"]  # type: ignore[typeddict-item]
        held = {k: _DESERIALIZE.deserialize(v) for k, v in raw.items()}
        return NotificationClaim(
            subject=claim.subject,
            key=claim.key,
            execution=str(held["execution"]) if "execution" in held else None,
            run_id=str(held["run_id"]),
            at=datetime.fromisoformat(str(held["claimed_at"])),
        )

    # --- fetch log -----------------------------------------------------------------------------------------

    def put_fetch_log(self, entry: FetchLogEntry) -> None:
        keys = {
            "pk": fetch_pk(entry.project_id, entry.account_id, entry.bill_date),
            "sk": fetch_log_sort_key(entry),
            "type": "fetch",
            "status": entry.status,
        }
        self.table.put_item(Item=encode_item(keys, fetch_log_to_json(entry)))

    def list_fetch_log(self, project_id: str, account_id: str, bill_date: date) -> list[FetchLogEntry]:
        """The attempts for that statement, oldest first."""
        items = self._query(
            KeyConditionExpression=Key("pk").eq(fetch_pk(project_id, account_id, bill_date)),
            ConsistentRead=True,
        )
        return [fetch_log_from_json(decode_payload(item)) for item in items]
