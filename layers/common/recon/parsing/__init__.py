"""Statement parsing: raw bytes of a channel bill, bank statement or ERP export -> normalized transactions.

Supported (detected from content, gzip/zip containers opened):

* ``wechat.tradebill.{all,success,refund,all_legacy,success_legacy,refund_legacy}``, ``wechat.fundflow``
* ``alipay.trade.zip`` / ``alipay.trade.csv`` (业务明细), ``alipay.signcustomer.zip`` / ``.csv`` (账务明细)
* ``camt.053.001.02`` … ``camt.053.001.08``
* ``erp.orders.csv``

Every row read is accounted for: parsed, skipped (by a named rule) or rejected (with file, row, column and
reason). Totals the file states about itself are checked; a disagreement raises ``StatementParseError``.
Money is integer minor units, signed: positive = money in to the merchant; net = amount - fee.
"""

from .api import detect_format, parse_statement
from .model import ParsedStatement, StatementParseError

__all__ = ["ParsedStatement", "StatementParseError", "detect_format", "parse_statement"]
