"""Lake maintenance: compaction of closed hours into one file each, and retention by age.

Called by `flowlake lake compact|expire` (cron, a Kubernetes CronJob) and by the lake sink when
`lake.maintenance_seconds` is set. Run one compactor per lake at a time; a second one racing is safe
for readers (the newer compacted file wins, `layout.visible_files`) but wastes work.

Guarantee to readers (`engine.store.lake`): every row is read exactly once at any moment. Compaction
(1) writes the merged file of an hour under a new name, atomically, naming the files it replaces in
its footer; from then on readers hide those files; (2) deletes them on a later run, once the merged
file is older than `grace_seconds`, so a query that listed the old files before step 1 can still open
them if it finishes within the grace period.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flowlake.engine import selfmetrics
from flowlake.engine.store import lake as reader
from flowlake.engine.store import layout, writer

log = logging.getLogger(__name__)


@dataclass
class CompactStats:
    """What one compaction run did (the CLI prints it)."""

    hours_compacted: int = 0
    files_merged: int = 0
    rows: int = 0
    files_deleted: int = 0
    compacted: list[str] = field(default_factory=list)


def compact(url: str, *, now_ms: int | None = None, min_age_seconds: float = 3600.0,
            grace_seconds: float = 300.0, encoding: writer.Encoding | None = None,
            storage_options: Mapping[str, Any] | None = None) -> CompactStats:
    """Merge the files of each closed hour into one; delete files superseded longer than `grace_seconds` ago.

    An hour is closed once its end is `min_age_seconds` in the past (late flows arriving after that
    land in new files beside the compacted one, and the next run merges them in).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    fs, root = layout.open_root(url, storage_options)
    enc = encoding or writer.Encoding()
    stats = CompactStats()
    for hour_ms, paths in layout.hour_files(fs, root).items():
        visible = layout.visible_files(fs, paths)
        hidden = sorted(set(paths) - set(visible))
        if hidden and _age_ms(_newest_compacted(paths), now_ms) >= grace_seconds * 1000:
            fs.rm(hidden)
            stats.files_deleted += len(hidden)
        if len(visible) < 2 or hour_ms + layout.HOUR_MS + min_age_seconds * 1000 > now_ms:
            continue
        frame = writer.sort_rows(writer.conform(reader.read_files(fs, visible).collect()))
        names = [p.rsplit("/", 1)[-1] for p in visible]
        path = writer.publish(fs, root, hour_ms, frame, enc, prefix=layout.COMPACT_PREFIX, replaces=names)
        stats.hours_compacted += 1
        stats.files_merged += len(visible)
        stats.rows += frame.height
        stats.compacted.append(path)
        selfmetrics.LAKE_COMPACTED.inc(len(visible))
        log.info("lake: compacted %d files (%d rows) of %s into %s", len(visible), frame.height,
                 layout.partition_dir(root, hour_ms), path.rsplit("/", 1)[-1])
    return stats


def expire(url: str, days: float, *, now_ms: int | None = None,
           storage_options: Mapping[str, Any] | None = None) -> list[int]:
    """Delete the hour partitions that ended more than `days` ago; returns their start times (ms)."""
    if days <= 0:
        raise ValueError(f"retention of {days} days would delete everything; give a positive number of days")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    fs, root = layout.open_root(url, storage_options)
    cutoff = now_ms - int(days * layout.DAY_MS)
    expired = sorted({h for h in layout.hour_files(fs, root) if h + layout.HOUR_MS <= cutoff})
    for hour_ms in expired:
        fs.rm(layout.partition_dir(root, hour_ms), recursive=True)
        selfmetrics.LAKE_EXPIRED.inc()
    for day_dir in fs.ls(root, detail=False) if expired else []:  # drop day folders left empty
        day = layout.day_of_dir(day_dir)
        if day is not None and day + layout.DAY_MS <= cutoff and not fs.ls(day_dir, detail=False):
            fs.rm(day_dir, recursive=True)
    if expired:
        log.info("lake: retention of %g days deleted %d hour partitions of %s", days, len(expired), url)
    return expired


def _newest_compacted(paths: list[str]) -> str:
    names = [p.rsplit("/", 1)[-1] for p in paths if p.rsplit("/", 1)[-1].startswith(layout.COMPACT_PREFIX + "-")]
    return max(names)


def _age_ms(name: str, now_ms: int) -> int:
    """Age of a file from the write time in its name (`compact-20261126T101500123456-...`)."""
    stamp = name.split("-")[1]
    written = datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    return now_ms - int(written.timestamp() * 1000)
