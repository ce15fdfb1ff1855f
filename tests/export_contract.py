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
