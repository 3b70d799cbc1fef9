"""Reading catalog and event files (CSV or JSON Lines, optionally gzipped) into messages, with
the file and line of any bad row in the error, so a 100,000-line import says where to look."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from copyloop.v1 import common_pb2, profile_pb2
from copyloop_client.convert import InputError, event_from_dict, item_from_dict

__all__ = [
    "FORMATS",
    "detect_format",
    "read_amazon_items",
    "read_events",
    "read_items",
    "read_rows",
]

FORMATS = ("csv", "jsonl")
M = TypeVar("M")


def detect_format(path: Path) -> str:
    """csv or jsonl from the suffix (before any .gz)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise InputError(
        f"{path}: cannot tell the format from the name; pass --format csv or --format jsonl"
    )


def _open(path: Path) -> IO[str]:
    try:
        if path.suffix.lower() == ".gz":
            return gzip.open(path, "rt", encoding="utf-8", newline="")
        return path.open("r", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_rows(path: Path, fmt: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs. CSV: a header line, then one row per line (empty cells are
    unset values). JSONL: one JSON object per non-blank line."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    with _open(path) as handle:
        try:
            if fmt == "csv":
                delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
                reader = csv.DictReader(handle, delimiter=delimiter)
                if not reader.fieldnames:
                    raise InputError(f"{path}: empty file (a CSV needs a header line)")
                for row in reader:
                    if None in row:
                        raise InputError(
                            f"{path}:{reader.line_num}: more cells than header columns"
                        )
                    cleaned = {k.strip(): v for k, v in row.items() if k and k.strip()}
                    if any((v or "").strip() for v in cleaned.values()):
                        yield reader.line_num, cleaned
            else:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                    if not isinstance(row, dict):
                        raise InputError(f"{path}:{number}: expected a JSON object per line")
                    yield number, row
        except (UnicodeDecodeError, csv.Error, EOFError, OSError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from None


def _convert(path: Path, fmt: str | None, convert: Callable[[dict[str, Any]], M]) -> list[M]:
    messages = []
    for line, row in read_rows(path, fmt):
        try:
            messages.append(convert(row))
        except InputError as exc:
            raise InputError(f"{path}:{line}: {exc}") from None
    return messages


def read_items(path: Path, fmt: str | None = None) -> list[common_pb2.Item]:
    """Catalog rows: item_id, title, brand, category_path, price, list_price, currency_code,
    stock, selling_points, tags, attributes (see convert.item_from_dict)."""
    return _convert(path, fmt, item_from_dict)


def read_events(path: Path, fmt: str | None = None) -> list[profile_pb2.Event]:
    """Event rows: event_id, user_id, type, item_id, event_time, quantity, price, query,
    request_id, creative_id (see convert.event_from_dict)."""
    return _convert(path, fmt, event_from_dict)


def read_amazon_items(path: Path) -> list[common_pb2.Item]:
    """The Amazon 2020 product sample (Uniq Id, Product Name, Category, Selling Price, About
    Product, ...), mapped by the demo package's loader so the CLI and the benchmarks agree."""
    if not path.is_file():
        raise InputError(f"cannot read {path}: no such file")
    from copyloop.demo.catalog import load_amazon_catalog  # heavy tables; only when asked
    from copyloop.demo.loader import item_to_proto

    try:
        return [item_to_proto(item) for item in load_amazon_catalog(path)]
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
