"""camt_fast finds the tags of the usual statement by their '<' alone (runs of entries of one layout, compared
with the run's first entry): what that admits and what sends a document to the full bracket scan or to the
careful reader, each compared with ``camt.parse`` (test_parse_fastpaths.py's differential check)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .test_parse_fastpaths import _compare


def _statement() -> bytes:
    """Two statements, each of entries of one layout (the usual file), pretty-printed."""

    def entry(n: int, memo: str) -> str:
        kind = "CRDT" if n % 3 else "DBIT"
        return (
            f'<Ntry>\n  <NtryRef>R{n}</NtryRef>\n  <Amt Ccy="CNY">{n}.{n % 100:02d}</Amt>\n'
            f"  <CdtDbtInd>{kind}</CdtDbtInd>\n  <Sts><Cd>BOOK</Cd></Sts>\n"
            f"  <BookgDt><Dt>2026-11-{n % 28 + 1:02d}</Dt></BookgDt>\n"
            f"  <NtryDtls><TxDtls><RmtInf><Ustrd>{memo} {n}</Ustrd></RmtInf></TxDtls></NtryDtls>\n"
            f"  <AddtlNtryInf>entry {n}</AddtlNtryInf>\n</Ntry>\n"
        )

    first = "".join(entry(n, "ALIPAY SETTLEMENT") for n in range(1, 31))
    second = "".join(entry(n, "手续费").replace("<AddtlNtryInf>", "<AddtlTxInf>") for n in range(31, 45))
    stmt = "<Stmt>\n<Id>S{0}</Id>\n<Acct><Id><Othr><Id>6222{0}</Id></Othr></Id><Ccy>CNY</Ccy></Acct>\n{1}</Stmt>\n"
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<Document xmlns='urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'>\n<BkToCstmrStmt>\n"
        "<GrpHdr><MsgId>M</MsgId></GrpHdr>\n"
        + stmt.format(1, first)
        + stmt.format(2, second.replace("</AddtlNtryInf>", "</AddtlTxInf>"))
        + "</BkToCstmrStmt>\n</Document>\n"
    ).encode()


def _in_entry(data: bytes, k: int, old: bytes, new: bytes) -> bytes:
    """``old`` replaced by ``new`` in the k-th entry (0-based; -1 the last)."""
    starts = [found.start() for found in re.finditer(b"<Ntry>", data)]
    at = data.index(old, starts[k])
    assert at < data.index(b"</Ntry>", starts[k])
    return data[:at] + new + data[at + len(old) :]


@pytest.mark.parametrize(
    ("change", "read_fast"),
    [
        # a '>' in texts of every entry, as XML allows: the runs keep one layout
        (
            lambda d: d.replace(b"<Ustrd>", b"<Ustrd>a > b ").replace(
                b"</AddtlNtryInf>", b" =>x</AddtlNtryInf>"
            ),
            True,
        ),
        # markup other than tags beside the entries: every tag is then found by both its brackets
        (lambda d: d.replace(b"</GrpHdr>", b"</GrpHdr><!-- a note -->", 1), True),
        (lambda d: d.replace(b"<BkToCstmrStmt>", b"<?pi x?><BkToCstmrStmt>", 1), True),
        # no XML declaration
        (lambda d: d.split(b"?>", 1)[1].lstrip(), True),
        # a later entry whose tags differ from the first one's by a space (the shape hash then reads them)
        (lambda d: _in_entry(d, -1, b"<Ustrd>", b"<Ustrd >"), True),
        # a '<Ntry>' inside a comment is no entry
        (lambda d: d.replace(b"</GrpHdr>", b"</GrpHdr><!-- <Ntry> -->", 1), False),
        # '>' in an attribute value of an entry's tag: the first entry's, or a later one's
        (lambda d: _in_entry(d, 0, b'<Amt Ccy="CNY">', b"<Amt Ccy=\"CNY\" x='>'>"), False),
        (lambda d: _in_entry(d, -1, b'<Amt Ccy="CNY">', b"<Amt Ccy=\"CNY\" x='>'>"), False),
    ],
)
def test_tag_scan_reads_alike(change: Callable[[bytes], bytes], read_fast: bool) -> None:
    data = _statement()
    changed = change(data)
    assert changed != data
    assert _compare(changed, must_read=read_fast) is read_fast


def test_the_usual_statement_is_read_by_its_tag_starts() -> None:
    """The usual statement takes the quick scan: no full bracket scan (``_Tags.of``) is made."""
    from recon.parsing import camt_fast

    calls: list[bytes] = []
    full = camt_fast._Tags.of

    def counted(data: bytes) -> camt_fast._Tags:
        calls.append(data)
        return full(data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(camt_fast._Tags, "of", staticmethod(counted))
        assert _compare(_statement(), must_read=True)
        assert calls == []
        assert _compare(_in_entry(_statement(), -1, b"<Ustrd>", b"<Ustrd >"), must_read=True)
        assert len(calls) == 1
