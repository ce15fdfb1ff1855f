"""Score a reconciliation engine's output against labelled days (docs/accuracy.md).

Input: the labels (``labelled.RowLabel``) and the output folders of the runs over those days, in run order,
each as ``recon run --out`` writes it:

* ``matches.csv``: group_id, rule, source, txn_id, amount, currency [, status, confidence, pass]
* ``cases.csv``: case_id, type, source, txn_id, amount, currency, counterpart_source, counterpart_txn_id,
  delta [, severity, reason, rule]
* ``filtered.csv``: source, account_id, txn_id, amount, currency, rule [, detail]
* ``open_items.csv``: source, account_id, txn_id, amount, currency, first_seen, age_days (held_by)
* ``summary.json``

Engines that predate some of these are still scored, and the report says how: without ``status`` every
group counts as *auto*; without ``filtered.csv`` filtered rows are credited from ``summary.json``'s
per-rule counts; without ``open_items.csv`` nothing is open.

A row's final place is every placement in a match group, case or filtered set over all runs, plus the open
items of the *last* run (an item open in an earlier run must reappear later, placed or still open). Rows are
identified by (source, txn_id); repeats of one id (duplicates) are paired with their labels by best
agreement. A *link* is a pair of members of one group; it is wrong when the two are not in the same true
link group.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recon.money import MoneyError, to_minor

from .labelled import Expect, LabelledSet, RowLabel, read_labels

__all__ = [
    "MAX_ROWS_LOST",
    "MAX_WRONG_LINKS_PER_1000",
    "MIN_CASE_PRECISION",
    "MIN_CASE_RECALL",
    "MIN_MATCHABLE_SHARE",
    "Placement",
    "Score",
    "TypeScore",
    "read_placements",
    "score",
]

# The targets.
MAX_WRONG_LINKS_PER_1000 = 1.0
MIN_MATCHABLE_SHARE = 0.99
MIN_CASE_PRECISION = 0.98
MIN_CASE_RECALL = 0.98
MAX_ROWS_LOST = 0

NONE = "-"  # "no case" in the case-type confusion
_AUTO = "auto"
_SUGGESTED = "suggested"


@dataclass(frozen=True)
class Placement:
    """One output row: where one run put one (source, txn_id)."""

    run: str
    kind: str  # group | case | filtered | open
    ref: str  # group_id | case_id | filter rule | ""
    source: str
    txn_id: str
    amount_minor: int | None
    status: str = ""  # groups: auto | suggested
    case_type: str = ""
    rule: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.txn_id)

    @property
    def where(self) -> str:
        if self.kind == "group":
            return f"{self.status} group"
        if self.kind == "case":
            return f"case {self.case_type}"
        if self.kind == "filtered":
            return f"filtered {self.ref}"
        return "open"


@dataclass
class TypeScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        if self.tp + self.fp:
            return self.tp / (self.tp + self.fp)
        return 1.0 if self.fn == 0 else 0.0

    @property
    def recall(self) -> float:
        if self.tp + self.fn:
            return self.tp / (self.tp + self.fn)
        return 1.0 if self.fp == 0 else 0.0


@dataclass
class Score:
    """The scorer's figures. ``failures()`` names every target missed; ``report()`` is for people."""

    runs: list[str] = field(default_factory=list)
    labelled_rows: int = 0
    labelled_batches: int = 0
    # links
    auto_groups: int = 0
    auto_links: int = 0
    wrong_auto_links: int = 0
    suggested_groups: int = 0
    suggested_links: int = 0
    wrong_suggested_links: int = 0
    suggested_rows: int = 0
    # rows that should be auto-matched
    matchable_rows: int = 0
    matchable_auto: int = 0  # in an auto group at all
    matchable_auto_correct: int = 0  # ... with only true partners (and at least one, where it has one)
    ambiguous_rows: int = 0
    ambiguous_auto: int = 0
    ambiguous_suggested: int = 0
    # case types
    case_types: dict[str, TypeScore] = field(default_factory=dict)
    # filtered
    filtered_expected: int = 0
    filtered_correct: int = 0
    filtered_by_count: bool = False
    # nothing lost
    rows_lost: list[str] = field(default_factory=list)
    rows_twice: list[str] = field(default_factory=list)
    unknown_rows: list[str] = field(default_factory=list)
    open_at_end: int = 0
    # what went where: (expected, got) -> rows
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # -- figures

    @property
    def wrong_links_per_1000(self) -> float:
        return 1000 * self.wrong_auto_links / self.auto_links if self.auto_links else 0.0

    @property
    def matchable_share(self) -> float:
        return self.matchable_auto_correct / self.matchable_rows if self.matchable_rows else 1.0

    def _micro(self) -> TypeScore:
        total = TypeScore()
        for s in self.case_types.values():
            total.tp += s.tp
            total.fp += s.fp
            total.fn += s.fn
        return total

    @property
    def case_precision(self) -> float:
        return self._micro().precision

    @property
    def case_recall(self) -> float:
        return self._micro().recall

    @property
    def case_macro_precision(self) -> float:
        scored = [s.precision for s in self.case_types.values() if s.tp + s.fp]
        return sum(scored) / len(scored) if scored else 1.0

    @property
    def case_macro_recall(self) -> float:
        scored = [s.recall for s in self.case_types.values() if s.tp + s.fn]
        return sum(scored) / len(scored) if scored else 1.0

    def failures(self) -> list[str]:
        out = []
        if self.wrong_links_per_1000 > MAX_WRONG_LINKS_PER_1000:
            out.append(f"wrong auto links {self.wrong_links_per_1000:.2f}/1000 > {MAX_WRONG_LINKS_PER_1000}")
        if self.matchable_share < MIN_MATCHABLE_SHARE:
            out.append(f"matchable rows auto-matched {self.matchable_share:.2%} < {MIN_MATCHABLE_SHARE:.0%}")
        if self.case_precision < MIN_CASE_PRECISION:
            out.append(f"case-type precision {self.case_precision:.2%} < {MIN_CASE_PRECISION:.0%}")
        if self.case_recall < MIN_CASE_RECALL:
            out.append(f"case-type recall {self.case_recall:.2%} < {MIN_CASE_RECALL:.0%}")
        if len(self.rows_lost) > MAX_ROWS_LOST:
            out.append(f"{len(self.rows_lost)} row(s) lost")
        if self.rows_twice:
            out.append(f"{len(self.rows_twice)} row(s) placed more than once")
        if self.ambiguous_auto:
            out.append(f"{self.ambiguous_auto} ambiguous row(s) auto-matched")
        return out

    def meets_targets(self) -> bool:
        return not self.failures()

    def report(self) -> str:
        def row(name: str, value: str, target: str, ok: bool) -> str:
            return f"  {name:<44} {value:>22}  {target:<8} {'ok' if ok else 'MISSED'}"

        micro = self._micro()
        lines = [
            f"Accuracy over {len(self.runs)} run(s): {self.labelled_rows:,} labelled rows, "
            f"{self.labelled_batches} settlement batches",
            f"  {'figure':<44} {'value':>22}  {'target':<8}",
            row(
                "wrong auto links per 1,000",
                f"{self.wrong_links_per_1000:.2f} ({self.wrong_auto_links}/{self.auto_links:,})",
                f"<= {MAX_WRONG_LINKS_PER_1000:g}",
                self.wrong_links_per_1000 <= MAX_WRONG_LINKS_PER_1000,
            ),
            row(
                "truly matchable rows auto-matched",
                f"{self.matchable_share:.2%} ({self.matchable_auto_correct:,}/{self.matchable_rows:,})",
                f">= {MIN_MATCHABLE_SHARE:.0%}",
                self.matchable_share >= MIN_MATCHABLE_SHARE,
            ),
            row(
                "case-type precision (micro)",
                f"{micro.precision:.2%} ({micro.tp}/{micro.tp + micro.fp})",
                f">= {MIN_CASE_PRECISION:.0%}",
                micro.precision >= MIN_CASE_PRECISION,
            ),
            row(
                "case-type recall (micro)",
                f"{micro.recall:.2%} ({micro.tp}/{micro.tp + micro.fn})",
                f">= {MIN_CASE_RECALL:.0%}",
                micro.recall >= MIN_CASE_RECALL,
            ),
            row("rows lost", str(len(self.rows_lost)), "0", not self.rows_lost),
            row("rows placed more than once", str(len(self.rows_twice)), "0", not self.rows_twice),
            row("ambiguous rows auto-matched", str(self.ambiguous_auto), "0", not self.ambiguous_auto),
            "",
            f"  matchable rows in any auto group: {self.matchable_auto:,}/{self.matchable_rows:,}; "
            f"auto groups {self.auto_groups:,}",
            f"  case types macro: precision {self.case_macro_precision:.2%}, recall {self.case_macro_recall:.2%}",
            f"  suggested: {self.suggested_groups} group(s), {self.suggested_rows} row(s), "
            f"{self.wrong_suggested_links}/{self.suggested_links} link(s) wrong",
            f"  ambiguous rows: {self.ambiguous_rows} ({self.ambiguous_suggested} suggested, "
            f"{self.ambiguous_auto} auto-matched)",
            f"  filtered: {self.filtered_correct}/{self.filtered_expected} as expected"
            + (" (credited by count from summary.json)" if self.filtered_by_count else ""),
            f"  open at the end: {self.open_at_end}; output rows matching no label: {len(self.unknown_rows)}",
            "",
            f"  {'case type':<20} {'TP':>5} {'FP':>5} {'FN':>5} {'precision':>10} {'recall':>8}",
        ]
        for name, s in sorted(self.case_types.items()):
            lines.append(f"  {name:<20} {s.tp:>5} {s.fp:>5} {s.fn:>5} {s.precision:>10.2%} {s.recall:>8.2%}")
        lines += ["", "  where rows went (expected -> got, rows):"]
        for (expected, got), count in sorted(self.confusion.items(), key=lambda kv: (-kv[1], kv[0])):
            if expected != got:
                lines.append(f"    {expected:<34} -> {got:<34} {count:>6}")
        for title, items in self.examples.items():
            if items:
                lines.append(f"  {title} (first {len(items)}):")
                lines.extend(f"    {item}" for item in items)
        for note in self.notes:
            lines.append(f"  note: {note}")
        failures = self.failures()
        lines.append("")
        lines.append("MEETS THE TARGETS" if not failures else "MISSES: " + "; ".join(failures))
        return "\n".join(lines)


# --- reading outputs ----------------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    # utf-8-sig: our exports start with a byte order mark (for Excel); older ones and other engines' do not.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _minor(text: str, currency: str) -> int | None:
    try:
        return to_minor(text, currency or "CNY")
    except (MoneyError, ValueError, ArithmeticError):
        return None


def _placement(run: str, kind: str, ref: str, row: dict[str, str], **details: str) -> Placement:
    """One output row as a placement: the fields every output file shares, plus its own."""
    return Placement(
        run=run,
        kind=kind,
        ref=ref,
        source=row["source"],
        txn_id=row["txn_id"],
        amount_minor=_minor(row["amount"], row.get("currency", "")),
        **details,
    )


def read_placements(out_dir: Path, notes: set[str] | None = None) -> list[Placement]:
    """Every output row of one run folder (missing files mean "nothing of that kind")."""
    notes = notes if notes is not None else set()
    run = out_dir.name
    placed: list[Placement] = []
    path = out_dir / "matches.csv"
    if path.exists():
        columns, rows = _read_csv(path)
        if "status" not in columns:
            notes.add("matches.csv has no status column: every group counted as auto")
        for r in rows:
            status = (r.get("status") or _AUTO).strip().lower()
            placed.append(_placement(run, "group", r["group_id"], r, status=status, rule=r.get("rule", "")))
    path = out_dir / "cases.csv"
    if path.exists():
        _, rows = _read_csv(path)
        for r in rows:
            placed.append(
                _placement(run, "case", r["case_id"], r, case_type=r["type"], rule=r.get("rule", ""))
            )
    path = out_dir / "filtered.csv"
    if path.exists():
        _, rows = _read_csv(path)
        for r in rows:
            placed.append(_placement(run, "filtered", r["rule"], r, rule=r["rule"]))
    path = out_dir / "open_items.csv"
    if path.exists():
        _, rows = _read_csv(path)
        for r in rows:
            placed.append(_placement(run, "open", "", r))
    return placed


def _filtered_counts(out_dir: Path) -> Counter[tuple[str, str]]:
    """(source, rule) -> rows filtered, from summary.json (engines without filtered.csv)."""
    path = out_dir / "summary.json"
    counts: Counter[tuple[str, str]] = Counter()
    if not path.exists():
        return counts
    data = json.loads(path.read_text("utf-8"))
    for source, figures in (data.get("sources") or {}).items():
        for rule, n in (figures.get("filtered_by_rule") or {}).items():
            counts[(source, rule)] += int(n)
    return counts


# --- scoring ------------------------------------------------------------------------------------------


def _expected(label: RowLabel) -> str:
    if label.expect is Expect.MATCH:
        return "suggested (ambiguous)" if label.ambiguous else "auto group"
    if label.expect is Expect.CASE:
        return f"case {label.case_type}"
    if label.expect is Expect.FILTERED:
        return f"filtered {label.filter_rule}"
    return "counterpart"


def _agreement(label: RowLabel, placement: Placement) -> int:
    """How well a placement fits a label (used to pair repeats of one id with their labels)."""
    if label.expect is Expect.MATCH and placement.kind == "group":
        return 3
    if label.expect is Expect.CASE and placement.kind == "case":
        return 3 if placement.case_type == label.case_type else 2
    if label.expect is Expect.FILTERED and placement.kind == "filtered":
        return 3 if placement.ref == label.filter_rule else 2
    return 1 if placement.kind == "open" else 0


def _pair(labels: list[RowLabel], placements: list[Placement]) -> list[tuple[int, int]]:
    """Best one-to-one pairing of labels with placements (indices); exhaustive for the usual 1-3 repeats."""
    if len(labels) == 1 and len(placements) == 1:
        return [(0, 0)]
    n, m = len(labels), len(placements)
    if min(n, m) <= 6 and max(n, m) <= 8:
        best: tuple[int, list[tuple[int, int]]] = (-1, [])
        if n <= m:
            for chosen in itertools.permutations(range(m), n):
                total = sum(_agreement(labels[i], placements[j]) for i, j in enumerate(chosen))
                if total > best[0]:
                    best = (total, list(enumerate(chosen)))
        else:
            for chosen in itertools.permutations(range(n), m):
                total = sum(_agreement(labels[i], placements[j]) for j, i in enumerate(chosen))
                if total > best[0]:
                    best = (total, [(i, j) for j, i in enumerate(chosen)])
        return best[1]
    candidates = sorted(
        ((-_agreement(labels[i], placements[j]), i, j) for i in range(n) for j in range(m)),
    )
    used_l: set[int] = set()
    used_p: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_l and j not in used_p:
            used_l.add(i)
            used_p.add(j)
            pairs.append((i, j))
    return pairs


def _resolve_labels(labels: LabelledSet | Sequence[RowLabel] | Path) -> list[RowLabel]:
    if isinstance(labels, LabelledSet):
        return list(labels.labels)
    if isinstance(labels, Path):
        return read_labels(labels)
    return list(labels)


def score(
    labels: LabelledSet | Sequence[RowLabel] | Path,
    out_dirs: Path | Sequence[Path],
    *,
    examples: int = 10,
) -> Score:
    """Score the runs in ``out_dirs`` (in run order) against ``labels``."""
    label_list = _resolve_labels(labels)
    dirs = [out_dirs] if isinstance(out_dirs, Path) else list(out_dirs)
    result = Score(runs=[d.name for d in dirs])
    notes: set[str] = set()
    per_run = [read_placements(d, notes) for d in dirs]
    has_filtered = any((d / "filtered.csv").exists() for d in dirs)
    if not any((d / "open_items.csv").exists() for d in dirs):
        notes.add("no open_items.csv: no row counted as open")
    final: list[Placement] = [p for run in per_run for p in run if p.kind != "open"]
    if per_run:
        final += [p for p in per_run[-1] if p.kind == "open"]

    by_key: dict[tuple[str, str], list[RowLabel]] = defaultdict(list)
    for label in label_list:
        by_key[(label.source, label.txn_id)].append(label)
    placed_by_key: dict[tuple[str, str], list[Placement]] = defaultdict(list)
    for p in final:
        placed_by_key[p.key].append(p)

    where: dict[str, Placement] = {}  # label_id -> its final placement
    label_of: dict[int, RowLabel] = {}  # id(placement) -> label
    example: dict[str, list[str]] = defaultdict(list)

    def note_example(kind: str, text: str) -> None:
        if len(example[kind]) < examples:
            example[kind].append(text)

    for key, placements in sorted(placed_by_key.items()):
        wanted = by_key.get(key, [])
        pairs = _pair(wanted, placements) if wanted else []
        for i, j in pairs:
            where[wanted[i].label_id] = placements[j]
            label_of[id(placements[j])] = wanted[i]
        paired = {j for _, j in pairs}
        for j, p in enumerate(placements):
            if j in paired:
                continue
            if wanted and not all(w.aggregate for w in wanted):
                result.rows_twice.append(f"{p.source}:{p.txn_id}")
                note_example("placed more than once", f"{p.source}:{p.txn_id} also in {p.run}: {p.where}")
            elif not wanted and "@" not in p.txn_id:
                result.unknown_rows.append(f"{p.source}:{p.txn_id}")
                note_example("output rows matching no label", f"{p.source}:{p.txn_id} in {p.run}: {p.where}")

    # Engines without filtered.csv: credit filtered rows by rule from summary.json's counts.
    if not has_filtered:
        budget: Counter[tuple[str, str]] = Counter()
        for d in dirs:
            budget += _filtered_counts(d)
        if budget:
            result.filtered_by_count = True
            notes.add("no filtered.csv: filtered rows credited by count from summary.json")
        for label in label_list:
            slot = (label.source, label.filter_rule)
            if label.expect is Expect.FILTERED and label.label_id not in where and budget[slot] > 0:
                budget[slot] -= 1
                where[label.label_id] = Placement(
                    run="summary.json",
                    kind="filtered",
                    ref=label.filter_rule,
                    source=label.source,
                    txn_id=label.txn_id,
                    amount_minor=label.amount_minor,
                    rule=label.filter_rule,
                )

    # Groups: members (labelled or not) per (run, group id).
    groups: dict[tuple[str, str], list[Placement]] = defaultdict(list)
    for p in final:
        if p.kind == "group":
            groups[(p.run, p.ref)].append(p)
    group_of: dict[str, tuple[str, str]] = {}
    for gkey, members in groups.items():
        status = members[0].status
        auto = status == _AUTO
        if auto:
            result.auto_groups += 1
        else:
            result.suggested_groups += 1
            result.suggested_rows += sum(1 for m in members if "@" not in m.txn_id)
        for m in members:
            member = label_of.get(id(m))
            if member is not None:
                group_of[member.label_id] = gkey
        for a, b in itertools.combinations(members, 2):
            la, lb = label_of.get(id(a)), label_of.get(id(b))
            wrong = la is None or lb is None or not la.group or la.group != lb.group
            if auto:
                result.auto_links += 1
                result.wrong_auto_links += wrong
            else:
                result.suggested_links += 1
                result.wrong_suggested_links += wrong
            if wrong and auto:
                left = la.label_id if la else f"{a.source}:{a.txn_id} (no label)"
                right = lb.label_id if lb else f"{b.source}:{b.txn_id} (no label)"
                note_example(
                    "wrong auto links",
                    f"{gkey[0]} {gkey[1]}: {left} [{la.group if la else '?'}] + "
                    f"{right} [{lb.group if lb else '?'}]",
                )

    rows_in_group: dict[str, int] = Counter(label.group for label in label_list if not label.aggregate)
    case_types: dict[str, TypeScore] = defaultdict(TypeScore)
    for label in label_list:
        placement = where.get(label.label_id)
        got = placement.where if placement is not None else "lost"
        if not label.aggregate:
            result.labelled_rows += 1
            result.confusion[(_expected(label), got)] += 1
            if placement is None:
                result.rows_lost.append(label.label_id)
                note_example(
                    "lost rows", f"{label.label_id} ({label.file}, {label.scenario}): {_expected(label)}"
                )
            elif placement.kind == "open":
                result.open_at_end += 1
        else:
            result.labelled_batches += 1
            if placement is not None or label.expect is Expect.CASE:
                result.confusion[(f"batch: {_expected(label)}", got if placement else "no case")] += 1

        if label.expect is Expect.FILTERED:
            result.filtered_expected += 1
            result.filtered_correct += (
                placement is not None and placement.where == f"filtered {label.filter_rule}"
            )

        in_auto = placement is not None and placement.kind == "group" and placement.status == _AUTO
        in_suggested = placement is not None and placement.kind == "group" and placement.status != _AUTO
        if label.ambiguous:
            result.ambiguous_rows += 1
            result.ambiguous_auto += in_auto
            result.ambiguous_suggested += in_suggested
            if in_auto:
                note_example("ambiguous rows auto-matched", f"{label.label_id} ({label.scenario})")
            continue  # neither matchable nor a definite case: only "not auto-matched" is asked of them

        if label.expect is Expect.MATCH and not label.aggregate:
            result.matchable_rows += 1
            result.matchable_auto += in_auto
            if in_auto and _only_true_partners(label, group_of, groups, label_of, rows_in_group):
                result.matchable_auto_correct += 1
            elif not in_auto:
                note_example("matchable rows not auto-matched", f"{label.label_id} ({label.scenario}): {got}")

        if label.expect is Expect.COUNTERPART:
            continue
        truth = label.case_type if label.expect is Expect.CASE else NONE
        predicted = placement.case_type if placement is not None and placement.kind == "case" else NONE
        if truth == predicted:
            if truth != NONE:
                case_types[truth].tp += 1
            continue
        if truth != NONE:
            case_types[truth].fn += 1
        if predicted != NONE:
            case_types[predicted].fp += 1
        if truth != NONE or predicted != NONE:
            note_example(
                "case-type errors",
                f"{label.label_id} ({label.scenario}): expected {_expected(label)}, got {got}",
            )
    # Cases on rows no label knows (an invented or mis-identified row) are false positives of their type.
    for p in final:
        if p.kind == "case" and id(p) not in label_of and f"{p.source}:{p.txn_id}" in result.unknown_rows:
            case_types[p.case_type].fp += 1
    result.case_types = dict(case_types)
    result.examples = {k: v for k, v in example.items() if v}
    result.notes = sorted(notes)
    return result


def _only_true_partners(
    label: RowLabel,
    group_of: dict[str, tuple[str, str]],
    groups: dict[tuple[str, str], list[Placement]],
    label_of: dict[int, RowLabel],
    rows_in_group: dict[str, int],
) -> bool:
    """In an auto group whose other members all share its true group, with a true partner row where it has
    one. A bank credit alone in its group passes: engines need not list the batches it settles."""
    gkey = group_of.get(label.label_id)
    if gkey is None:
        return False
    others = [m for m in groups[gkey] if label_of.get(id(m)) is not label]
    for m in others:
        other = label_of.get(id(m))
        if other is None or other.group != label.group:
            return False
    has_partner_rows = rows_in_group.get(label.group, 0) > 1
    partner_rows = [m for m in others if not (label_of[id(m)].aggregate)]
    return bool(partner_rows) or not has_partner_rows
