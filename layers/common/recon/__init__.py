"""recon: the shared reconciliation package deployed as the common Lambda layer.

Layout (handlers -> logic -> adapters):
- ``domain``    pydantic models: accounts, projects, rules, statements, transactions, match groups, cases, runs.
- ``money``     exact money (integer minor units, Decimal at the edges).
- ``ports``     small interfaces the logic depends on (object store, repository, notifier, workflow).
- ``adapters``  AWS implementations of the ports (S3, DynamoDB, SES, SNS, Step Functions) and in-memory fakes.
- ``parsing``   statement formats -> normalized transactions.
- ``matching``  match rules -> match groups and unmatched residue.
- ``resolving`` residue -> classified cases.
- ``reporting`` HTML report and notifications.
- ``pipeline``  one logic function per Lambda stage, wiring the above through the ports.
"""

__version__ = "0.1.0"
