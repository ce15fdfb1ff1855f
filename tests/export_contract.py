"""The export columns the foundation promised, in order: later columns may only be appended after them.

Spelled out here (not taken from ``recon.reporting.export``) so that a change to the exports fails the tests
that pin them: the unit tests of the writers, the CLI's outputs and the workflow's outputs.
"""

FOUNDATION_MATCH = ["group_id", "rule", "source", "txn_id", "amount", "currency"]
FOUNDATION_CASE = [
    "case_id",
    "type",
    "source",
    "txn_id",
    "amount",
    "currency",
    "counterpart_source",
    "counterpart_txn_id",
    "delta",
]
FOUNDATION_FILTERED = ["source", "account_id", "txn_id", "amount", "currency", "rule"]

# Appended after the foundation's, in this order (a later column may only come after them): the match
# group's status, confidence and pass, then the group's settled batches, explanation and evidence, so that
# every group's evidence is in the export (the report shows a sample).
APPENDED_MATCH = ["status", "confidence", "pass", "settles", "explanation", "evidence"]
# What a person checks a filtered row by: "repeats row N of <file>" (an earlier statement delivered it), else
# the filter rule's description.
APPENDED_FILTERED = ["detail"]
# summary.json ``case_stakes[type][currency]`` (and ``stake_totals[currency]``): absolute amounts at stake,
# split into 长款 / 短款, then the amount of cases that are not money at stake (DUPLICATE, a late payout).
CASE_STAKE_FIELDS = ["cases", "at_stake", "surplus", "shortage", "not_at_stake"]
# Appended to cases.csv: 长款 / 短款, the case's amount at stake (on its first row, as ``delta`` now is), its
# review status, and the row's booking time and value date.
APPENDED_CASE = ["severity", "reason", "rule", "direction", "at_stake", "status", "booked_at", "value_date"]
# summary.json ``sources[source].money[currency]``: the money tie-out, in + carried_in = out = matched +
# in_cases + filtered + open (held: of open, waiting for a missing statement; repeated: of in and of filtered,
# rows another statement of the day already delivered; received = in − repeated).
SOURCE_MONEY_FIELDS = [
    "in",
    "carried_in",
    "matched",
    "in_cases",
    "filtered",
    "open",
    "held",
    "out",
    "balanced",
    "repeated",
    "received",
]
