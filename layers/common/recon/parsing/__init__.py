"""Statement parsing: raw bytes of a channel bill, bank statement or ERP export -> normalized transactions.

Tabular layouts are parsing profiles (data, ``recon.parsing.profiles``; built-ins in ``builtin/*.yaml``)
run by the vectorised engine (``recon.parsing.engine``): WeChat Pay trade and fund-flow bills, Alipay
trade and account bills (zip or CSV), Chinese bank exports (ICBC, CCB, ABC, CMB), ERP orders (CSV, XLSX,
JSON). Self-describing formats are code readers: camt.053 here, MT940/BAI2/... in ``readers/``.

Every row read is accounted for: parsed, skipped (by a named rule) or rejected (with file, row, column and
reason). Totals the file states about itself are checked; a disagreement raises ``StatementParseError``.
Money is integer minor units, signed: positive = money in to the merchant; net = amount - fee.
"""

from .api import Detection, detect, detect_format, parse_statement
from .model import ParsedStatement, StatementParseError
from .profiles import Profile, ProfileSet, builtin_profiles, load_profiles, profile_json_schema

__all__ = [
    "Detection",
    "ParsedStatement",
    "Profile",
    "ProfileSet",
    "StatementParseError",
    "builtin_profiles",
    "detect",
    "detect_format",
    "load_profiles",
    "parse_statement",
    "profile_json_schema",
]
