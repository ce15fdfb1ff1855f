"""Words the matching engine writes into its results and their readers (exports, reports, e-mail) read back.

One definition for both sides: the report function imports neither numpy nor pyarrow, so it cannot import
the engine's modules, and a name copied into it would drift.
"""

from __future__ import annotations

from typing import Final

#: The built-in rule of a row left with no counterpart (recon.matching.residue).
UNMATCHED_RULE: Final = "no-counterpart"
#: A channel refund in full of an order the ERP shows paid (STATUS_MISMATCH; the ERP payment is its
#: counterpart).
REFUNDS_PAID_ORDER_RULE: Final = "refunds-paid-order"
#: An ERP refund and a channel refund of the same refund number on different orders (one OTHER case holding
#: both: the ERP booked the refund on the wrong order).
REFUND_OTHER_ORDER_RULE: Final = "refund-on-another-order"
#: The evidence field of an amount case whose Δ is the channel's merchant-funded discount (recon.matching.keyed).
MERCHANT_DISCOUNT: Final = "merchant_discount"
#: How the reason of a row that did not complete, and that nothing refers to, begins (recon.matching.residue).
DID_NOT_COMPLETE: Final = "This row did not complete"
