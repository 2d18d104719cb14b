"""Where flows live in the lake: hive partitions `date=YYYY-MM-DD/hour=HH/` keyed on TimeFlowEndMs (UTC).

Shared by the lake sink (writer) and `engine.store.lake` (reader) so both agree on every path.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import fsspec
from fsspec import AbstractFileSystem

STAGING_DIR = "_staging"  # readers never look here: files are written here, then renamed into place
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_DAY = re.compile(r"(?:^|/)date=(\d{4})-(\d{2})-(\d{2})$")
_PARTITION = re.compile(r"date=(\d{4})-(\d{2})-(\d{2})/hour=(\d{2})/[^/]+\.parquet$")


def open_root(url: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem and root path for a lake URL (`file://`, plain path, `memory://`, `s3://`, ...)."""
    fs, root = fsspec.core.url_to_fs(url)
    return fs, root.rstrip("/")


def partition_dir(root: str, hour_start_ms: int) -> str:
    """The directory of the hour partition that starts at `hour_start_ms`."""
    t = datetime.fromtimestamp(hour_start_ms / 1000, tz=UTC)
    return f"{root}/date={t:%Y-%m-%d}/hour={t:%H}"


def new_file_name() -> str:
    """A unique, time-ordered data file name, so a listing sorts roughly by write time."""
    now = datetime.now(tz=UTC)
    return f"part-{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}.parquet"


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
            out.append(path)
    return sorted(out)


def day_of_dir(path: str) -> int | None:
    """The day start (ms) of a `date=YYYY-MM-DD` folder, or None for anything else (`_staging`)."""
    m = _DAY.search(path.rstrip("/"))
    if m is None:
        return None
    y, mo, d = (int(g) for g in m.groups())
    return int(datetime(y, mo, d, tzinfo=UTC).timestamp() * 1000)
