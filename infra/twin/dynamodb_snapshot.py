"""Snapshot files of the twin's DynamoDB tables: one JSON file per table.

A file holds the table's items in DynamoDB JSON, the wire format (`{"pk": {"S": "x"}}`), so it
can be read and edited by hand and fed straight back to `BatchWriteItem`. boto3's low-level
client hands out binary values (B, BS) as `bytes`, which JSON cannot hold; on disk they are
base64 strings, exactly as on the wire.

Files are written to a temporary name and renamed into place, so a crash mid-write (or Ctrl-C)
leaves the previous snapshot intact rather than half a file.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Item = dict[str, Any]

# Items whose TTL passed longer ago than this are dropped on restore. AWS deletes expired items
# lazily (typically within days), and production code filters them on read anyway; dropping
# only the long-expired ones keeps the data folder from growing forever without hiding the
# "expired but not yet deleted" state the code must tolerate.
EXPIRED_GRACE_SECONDS = 24 * 3600

FORMAT_VERSION = 1


def snapshot_path(directory: Path, table_name: str) -> Path:
    return directory / f"{table_name}.json"


def item_to_disk(item: Item) -> Item:
    """An item from boto3's low-level form to JSON-safe form."""
    return {name: _convert_value(value, _bytes_to_base64) for name, value in item.items()}


def item_from_disk(item: Item) -> Item:
    """An item from JSON-safe form back to boto3's low-level form."""
    return {name: _convert_value(value, _base64_to_bytes) for name, value in item.items()}


def _bytes_to_base64(raw: Any) -> Any:
    return base64.b64encode(raw).decode("ascii") if isinstance(raw, bytes | bytearray) else raw


def _base64_to_bytes(text: Any) -> Any:
    return base64.b64decode(text) if isinstance(text, str) else text


def _convert_value(value: Any, convert_binary: Callable[[Any], Any]) -> Any:
    """Convert the binary parts of one attribute value ({"B": ...}, {"BS": [...]}, nested M/L)."""
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((type_tag, inner),) = value.items()
    if type_tag == "B":
        return {"B": convert_binary(inner)}
    if type_tag == "BS":
        return {"BS": [convert_binary(b) for b in inner]}
    if type_tag == "M":
        return {"M": {k: _convert_value(v, convert_binary) for k, v in inner.items()}}
    if type_tag == "L":
        return {"L": [_convert_value(v, convert_binary) for v in inner]}
    return value  # S, N, BOOL, NULL, SS, NS hold only JSON-safe values


def render(table_name: str, items: list[Item]) -> str:
    """The file's text. Items are sorted so that an unchanged table renders identically."""
    disk_items = sorted(
        (item_to_disk(item) for item in items), key=lambda i: json.dumps(i, sort_keys=True)
    )
    document = {"formatVersion": FORMAT_VERSION, "tableName": table_name, "items": disk_items}
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def read_items(path: Path, ttl_attribute: str | None, now: float | None = None) -> list[Item]:
    """Items from a snapshot file, in boto3 form, minus those expired for over a day."""
    if not path.exists():
        return []
    document = json.loads(path.read_text(encoding="utf-8"))
    items = [item_from_disk(item) for item in document.get("items", [])]
    if ttl_attribute is None:
        return items
    cutoff = (time.time() if now is None else now) - EXPIRED_GRACE_SECONDS
    return [item for item in items if not _expired_before(item, ttl_attribute, cutoff)]


def _expired_before(item: Item, ttl_attribute: str, cutoff: float) -> bool:
    ttl = item.get(ttl_attribute)
    # DynamoDB only honours a TTL held in a Number attribute; anything else never expires.
    if not isinstance(ttl, dict) or "N" not in ttl:
        return False
    try:
        return float(ttl["N"]) < cutoff
    except ValueError:
        return False
