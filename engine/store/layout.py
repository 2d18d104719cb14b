"""Where flows live in the lake: hive partitions `date=YYYY-MM-DD/hour=HH/` keyed on TimeFlowEndMs (UTC).

Shared by the lake sink (writer) and `engine.store.lake` (reader) so both agree on every path.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import fsspec
import pyarrow.parquet as pq
from fsspec import AbstractFileSystem

STAGING_DIR = "_staging"  # readers never look here: files are written here, then renamed into place
PART_PREFIX = "part"  # files the sink publishes
COMPACT_PREFIX = "compact"  # files compaction publishes; each names the files it replaces in its footer
COMPACTED_FROM = b"flowlake.compacted_from"  # footer key: JSON list of the file names a compacted file replaces
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_DAY = re.compile(r"(?:^|/)date=(\d{4})-(\d{2})-(\d{2})$")
_PARTITION = re.compile(r"date=(\d{4})-(\d{2})-(\d{2})/hour=(\d{2})/[^/]+\.parquet$")


def open_root(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[AbstractFileSystem, str]:
    """The filesystem and root path for a lake URL (`file://`, plain path, `memory://`, `s3://`, ...).

    `s3://` needs `pip install 'flowlake[s3]'` (s3fs); credentials and endpoint come from
    `storage_options` (`lake.storage_options`: key, secret, endpoint_url, ...) or the usual AWS_*
    environment variables (AWS_ENDPOINT_URL for a non-AWS store).
    """
    try:
        fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:
        extra = "s3" if url.startswith(("s3://", "s3a://")) else "all"
        raise ImportError(f"lake URL {url}: {exc}; pip install 'flowlake[{extra}]'") from exc
    return fs, root.rstrip("/")


def is_local(fs: AbstractFileSystem) -> bool:
    """True for the local disk (rename is atomic there, and listings are never stale)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def partition_dir(root: str, hour_start_ms: int) -> str:
    """The directory of the hour partition that starts at `hour_start_ms`."""
    t = datetime.fromtimestamp(hour_start_ms / 1000, tz=UTC)
    return f"{root}/date={t:%Y-%m-%d}/hour={t:%H}"


def new_file_name(prefix: str = PART_PREFIX) -> str:
    """A unique, time-ordered data file name, so a listing sorts roughly by write time."""
    now = datetime.now(tz=UTC)
    return f"{prefix}-{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}.parquet"


def hour_of_path(path: str) -> int | None:
    """The partition hour start (ms) encoded in a data file path, or None if it is not a data file."""
    m = _PARTITION.search(path)
    if m is None:
        return None
    y, mo, d, h = (int(g) for g in m.groups())
    return int(datetime(y, mo, d, h, tzinfo=UTC).timestamp() * 1000)


def data_files(fs: AbstractFileSystem, root: str, start_ms: int | None = None,
               end_ms: int | None = None) -> list[str]:
    """Published data files whose hour partition overlaps [start_ms, end_ms), sorted by path.

    This is the partition pruning: only the date folders that overlap the range are listed, and
    files of hours outside it are never returned, so never opened.
    """
    by_hour: dict[int, list[str]] = {}
    for hour, path in _hour_files(fs, root, start_ms, end_ms):
        by_hour.setdefault(hour, []).append(path)
    return sorted(p for paths in by_hour.values() for p in visible_files(fs, paths))


def hour_files(fs: AbstractFileSystem, root: str) -> dict[int, list[str]]:
    """Hour start (ms) -> every data file of that partition, superseded or not (compaction, retention)."""
    out: dict[int, list[str]] = {}
    for hour, path in _hour_files(fs, root, None, None):
        out.setdefault(hour, []).append(path)
    return {h: sorted(p) for h, p in sorted(out.items())}


def _hour_files(fs: AbstractFileSystem, root: str, start_ms: int | None,
                end_ms: int | None) -> list[tuple[int, str]]:
    if not is_local(fs):
        fs.invalidate_cache(root)  # s3fs caches listings: another process may have published since
    if not fs.exists(root):
        return []
    day_lo = None if start_ms is None else start_ms // DAY_MS * DAY_MS
    out = []
    for day_dir in fs.ls(root, detail=False):
        day = day_of_dir(day_dir)
        if day is None or (day_lo is not None and day < day_lo) or (end_ms is not None and day >= end_ms):
            continue
        for path in fs.glob(f"{day_dir.rstrip('/')}/hour=*/*.parquet"):
            hour = hour_of_path(path)
            if hour is None:
                continue
            if start_ms is not None and hour + HOUR_MS <= start_ms:
                continue
            if end_ms is not None and hour >= end_ms:
                continue
            out.append((hour, path))
    return out


def visible_files(fs: AbstractFileSystem, paths: list[str]) -> list[str]:
    """The files of one hour partition a reader must open: each row exactly once, however compaction stands.

    Compaction publishes a `compact-*` file holding the rows of the files it names in its footer, then
    deletes those files later (after a grace period, so running queries keep theirs). Until then both
    exist; this hides every file a kept compacted file replaces, transitively (a compacted file that was
    itself compacted again hides its own inputs too). When two compactors raced and their compacted
    files replace some of the same files, only the newest is kept, and the other's files stay visible.
    Footers are read only while a compacted file shares its partition with other files.
    """
    compacted = sorted((p for p in paths if _name(p).startswith(COMPACT_PREFIX + "-")), key=_name, reverse=True)
    if not compacted or len(paths) == 1:
        return paths
    claimed: set[str] = set()
    lost: set[str] = set()
    for path in compacted:  # newest first
        inputs = set(replaced(fs, path))
        if _name(path) in claimed:
            claimed |= inputs  # superseded itself: so is everything it superseded
        elif inputs & claimed:
            lost.add(path)  # a concurrent compaction of the same files lost to a newer one
        else:
            claimed |= inputs
    return [p for p in paths if _name(p) not in claimed and p not in lost]


def replaced(fs: AbstractFileSystem, path: str) -> list[str]:
    """The file names a compacted file supersedes (from its footer); [] for an ordinary data file."""
    if not _name(path).startswith(COMPACT_PREFIX + "-"):
        return []
    with fs.open(path, "rb") as fh:
        meta = pq.read_schema(fh).metadata or {}
    raw = meta.get(COMPACTED_FROM)
    return [str(n) for n in json.loads(raw)] if raw else []


def _name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def day_of_dir(path: str) -> int | None:
    """The day start (ms) of a `date=YYYY-MM-DD` folder, or None for anything else (`_staging`)."""
    m = _DAY.search(path.rstrip("/"))
    if m is None:
        return None
    y, mo, d = (int(g) for g in m.groups())
    return int(datetime(y, mo, d, tzinfo=UTC).timestamp() * 1000)
