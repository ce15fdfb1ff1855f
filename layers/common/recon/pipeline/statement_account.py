"""Parse stage: the account a statement says it is for must be the account it was delivered as.

A bank statement names its account (camt ``Stmt/Acct/Id``, camt.054 ``Ntfctn/Acct/Id``, MT940 ``:25:``,
BAI2 ``03`` record, OFX ``ACCTID``), a WeChat Pay bill its merchant on every row (``商户号``, or
``特约商户号`` for a sub-merchant of a service provider), an Alipay bill its account in the preamble
(``#账号：[...]``: the 2088 partner id followed by a 4-digit account suffix). A file of another account
delivered under the project's account would be reconciled as that account (another account's credit
settling our channel day), so the parse stage quarantines it. The numbers are compared only when the file
states one and the project declares ``accounts[].number``; a file that states none (a CMB 交易明细 export)
passes. A file holding statements of several accounts, one of them another account's, is quarantined as a
whole: its rows are not split by account.

The parsers do not expose the stated number, so it is read here from the raw bytes.
"""

from __future__ import annotations

import io
import re

import pyarrow as pa
import pyarrow.csv as pacsv

from recon.domain import Account, RowError, Source
from recon.domain.common import mask_number
from recon.parsing import StatementParseError
from recon.parsing._common import decode, unpack

_FILE_LEVEL_ROW = 0
_BINARY_CONTAINERS = (b"%PDF", b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
_XML_ACCOUNT = re.compile(r"<(?:\w+:)?Acct>(?P<body>.*?)</(?:\w+:)?Acct>", re.DOTALL)
_XML_ACCOUNT_ID = re.compile(r"<(?:\w+:)?(?:IBAN|Id)>\s*(?P<value>[^<\s][^<]*?)\s*</")
_MT940_ACCOUNT = re.compile(r"^:25P?:(?P<value>[^\r\n]+)", re.MULTILINE)
_BAI2_ACCOUNT = re.compile(r"^03,(?P<value>[^,/\r\n]*)", re.MULTILINE)
_OFX_ACCOUNT = re.compile(r"<ACCTID>\s*(?P<value>[^<\r\n]+)", re.IGNORECASE)
_ALIPAY_ACCOUNT = re.compile(r"^#?\s*账号[:：]\s*\[(?P<value>[^\]]+)\]", re.MULTILINE)
_HEAD_CHARS = 4096  # a preamble (Alipay's #账号, an OFX header) is in the first lines
_WECHAT_MERCHANT = "商户号"
_WECHAT_SUB_MERCHANT = "特约商户号"
_ALIPAY_ACCOUNT_SUFFIX = re.compile(r"^\d{4}$")  # 2088... partner id + account type (0156: the cash account)
_CURRENCY_SUFFIX = re.compile(r"^[A-Z]{3}$")  # MT940 :25: written as <account><currency> by some banks


def _normalized(number: str) -> str:
    return re.sub(r"[\s\-`'\t]", "", number).upper()


def same_account(stated: str, declared: str, source: Source) -> bool:
    """Whether a number a file states is the declared account's.

    Accepted spellings of the same account: spaces and dashes, MT940's ``BIC/account`` and
    ``<account><currency>``, an IBAN ending with the declared domestic number (or the reverse), an Alipay
    account (partner id + 4-digit suffix) of the declared partner id, and a declared number stored masked
    (only its last four characters are compared)."""
    stated_n, declared_n = _normalized(stated).rsplit("/", 1)[-1], _normalized(declared)
    if not stated_n or not declared_n:
        return True
    if "*" in declared_n:
        tail = declared_n.lstrip("*")
        return not tail or stated_n.endswith(tail)
    if stated_n == declared_n:
        return True
    longer, shorter = (stated_n, declared_n) if len(stated_n) > len(declared_n) else (declared_n, stated_n)
    if longer.startswith(shorter):
        rest = longer[len(shorter) :]
        if _CURRENCY_SUFFIX.fullmatch(rest):
            return True
        if source is Source.ALIPAY and _ALIPAY_ACCOUNT_SUFFIX.fullmatch(rest):
            return True
    iban = re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", longer)
    return bool(iban) and len(shorter) >= 8 and longer.endswith(shorter)


def _members(data: bytes, file: str) -> list[bytes]:
    try:
        return [member.data for member in unpack(data, file)]
    except StatementParseError:
        return []


def _texts(data: bytes, file: str, *, prefer_gbk: bool) -> list[str]:
    texts = []
    for member in _members(data, file):
        if member.startswith(_BINARY_CONTAINERS):
            continue  # PDF, workbooks: no text to read a number from here
        try:
            texts.append(decode(member, file, prefer_gbk=prefer_gbk)[0])
        except StatementParseError:
            continue
    return texts


def _xml_accounts(text: str) -> list[str]:
    """The ``Acct/Id`` (IBAN, else ``Othr/Id``) of every statement, notification or report of a camt file
    (the only elements named exactly ``Acct``: related parties' accounts are ``DbtrAcct``, ``CdtrAcct``)."""
    found = []
    for block in _XML_ACCOUNT.finditer(text):
        number = _XML_ACCOUNT_ID.search(block["body"])
        if number:
            found.append(number["value"])
    return found


def _wechat_merchants(data: bytes, file: str) -> list[tuple[str, str]]:
    """The distinct (商户号, 特约商户号) of the rows of a WeChat Pay bill (values carry a leading backtick).

    Read with Arrow's CSV reader, two columns only: a bill of a million rows is checked in about a second.
    The totals block after the rows (its own header line, 总交易单数,...) is cut off first."""
    merchant_at = data.find(_WECHAT_MERCHANT.encode())
    if merchant_at < 0:  # not UTF-8 (or not a trade bill): decode, then look again
        try:
            data = decode(data, file)[0].encode()
        except StatementParseError:
            return []
        merchant_at = data.find(_WECHAT_MERCHANT.encode())
        if merchant_at < 0:
            return []
    start = data.rfind(b"\n", 0, merchant_at) + 1
    totals = data.find("\n总".encode(), merchant_at)
    rows = data[start : len(data) if totals < 0 else totals + 1]
    header = [h.strip() for h in rows[: rows.find(b"\n")].decode("utf-8", "replace").split(",")]
    columns = [c for c in (_WECHAT_MERCHANT, _WECHAT_SUB_MERCHANT) if c in header]
    if _WECHAT_MERCHANT not in columns:
        return []
    try:
        table = pacsv.read_csv(
            io.BytesIO(rows),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda _row: "skip"),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns, column_types=dict.fromkeys(columns, pa.string())
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError):
        return []  # the parser reports what is wrong with the file
    subs = table.column(_WECHAT_SUB_MERCHANT) if len(columns) == 2 else pa.nulls(table.num_rows, pa.string())
    pairs = pa.Table.from_arrays([table.column(_WECHAT_MERCHANT), subs], names=["m", "s"])
    found = set()
    for row in pairs.group_by(["m", "s"]).aggregate([]).to_pylist():
        merchant, sub = ((row[k] or "").strip("` \t\r") for k in ("m", "s"))
        if merchant:
            found.add((merchant, "" if sub in ("", "0") else sub))
    return sorted(found)


def stated_accounts(data: bytes, file: str, source: Source) -> list[str]:
    """The account numbers the file states, in file order, each once (empty: it states none)."""
    found: list[str] = []
    if source is Source.WECHAT:
        for member in _members(data, file):
            found += [merchant for merchant, _ in _wechat_merchants(member, file)]
        return list(dict.fromkeys(found))
    for text in _texts(data, file, prefer_gbk=source is Source.ALIPAY):
        head = text[:_HEAD_CHARS].lstrip("\ufeff \r\n")
        if source is Source.ALIPAY:
            found += [m["value"] for m in _ALIPAY_ACCOUNT.finditer(head)]  # in the preamble
        elif source is Source.BANK and head.startswith("<"):
            found += _xml_accounts(text) or [m["value"] for m in _OFX_ACCOUNT.finditer(text)]
        elif source is Source.BANK:
            found += [m["value"] for m in _MT940_ACCOUNT.finditer(text)]
            found += [m["value"] for m in _BAI2_ACCOUNT.finditer(text)] if head.startswith("01,") else []
            found += [m["value"] for m in _OFX_ACCOUNT.finditer(text)] if "OFXHEADER" in head else []
    return list(dict.fromkeys(n.strip() for n in found if n.strip()))


def _wechat_other_merchants(data: bytes, file: str, declared: str) -> list[str]:
    """商户号 of the WeChat rows that are neither the declared merchant's nor its sub-merchant's."""
    other = []
    for member in _members(data, file):
        for merchant, sub in _wechat_merchants(member, file):
            if not any(n and same_account(n, declared, Source.WECHAT) for n in (merchant, sub)):
                other.append(merchant)
    return list(dict.fromkeys(other))


def account_errors(account: Account, data: bytes, key: str) -> list[RowError]:
    """Reject a file that states an account number other than the one the project declares for it."""
    if account.number is None or account.source is Source.ERP:
        return []
    declared = account.number.get_secret_value()
    if account.source is Source.WECHAT:
        others = _wechat_other_merchants(data, key, declared)
        stated = stated_accounts(data, key, account.source) if others else []
    else:
        stated = stated_accounts(data, key, account.source)
        others = [n for n in stated if not same_account(n, declared, account.source)]
    if not others:
        return []
    what = {Source.WECHAT: "merchant id (商户号)", Source.ALIPAY: "Alipay account (账号)"}.get(
        account.source, "account number"
    )
    shown = ", ".join(mask_number(_normalized(n)) for n in others)
    ours = [n for n in stated if n not in others]
    several = (
        f"; it also holds {mask_number(_normalized(ours[0]))} (the declared account): the whole file is "
        "quarantined, its rows are not split by account"
        if ours
        else ""
    )
    return [
        RowError(
            file=key,
            row=_FILE_LEVEL_ROW,
            reason=f"file states {what} {shown} but is delivered as account {account.account_id}, whose "
            f"declared number is {account.masked_number}{several}. A statement of another account is not "
            "reconciled: deliver it to the account it belongs to, or correct accounts[].number",
        )
    ]


__all__ = ["account_errors", "same_account", "stated_accounts"]
