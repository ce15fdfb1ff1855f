"""Pluggable statement readers for self-describing formats (MT940, camt.054, BAI2, OFX, PDF, ...).

Each reader module registers one ``FormatReader`` in ``READERS``. ``api.detect_format`` asks every reader
for a confidence on the unpacked member and picks the highest; ``api.parse_statement`` then calls that
reader's ``parse``. Tabular formats (channel bills, bank CSV/Excel exports, ERP exports) are not readers:
they are parsing profiles (``recon.parsing.profiles``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from ._common import Builder

# detect(data, file) -> (format id, confidence 0..1), or None when the content is not this format.
# It must never raise and must be cheap: it sees every unpacked file.
Detect = Callable[[bytes, str], tuple[str, float] | None]
# parse(data, builder, file, raw_key) -> (format id, encoding, statement date). Rows go into the builder
# (add / skip / reject), stated totals through builder.total/amount_total/count_total.
Parse = Callable[[bytes, Builder, str, str], tuple[str, str, date | None]]


@dataclass(frozen=True)
class FormatReader:
    name: str  # family name, e.g. "mt940"; format ids it returns start with it
    detect: Detect
    parse: Parse
    description: str = ""


READERS: list[FormatReader] = []


def register(reader: FormatReader) -> FormatReader:
    if any(r.name == reader.name for r in READERS):
        raise ValueError(f"statement reader {reader.name!r} registered twice")
    READERS.append(reader)
    return reader


def best_reader(data: bytes, file: str) -> tuple[FormatReader, str, float] | None:
    """The reader most confident about ``data`` (ties: registration order)."""
    best: tuple[FormatReader, str, float] | None = None
    for reader in READERS:
        try:
            found = reader.detect(data, file)
        except Exception:  # a detector must not take parsing down; treat as "not mine"
            found = None
        if found is not None and (best is None or found[1] > best[2]):
            best = (reader, found[0], found[1])
    return best


def reader_for(fmt: str) -> FormatReader | None:
    return next((r for r in READERS if fmt == r.name or fmt.startswith(r.name + ".")), None)
