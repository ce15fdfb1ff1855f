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
# summary.json ``case_stakes[type][currency]``: absolute amounts at stake, split into 长款 / 短款.
CASE_STAKE_FIELDS = ["cases", "at_stake", "surplus", "shortage"]
