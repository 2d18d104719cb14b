"""`flowlake lake compact|expire`: lake maintenance from the command line (cron, a Kubernetes CronJob)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EPILOG = """examples:
  flowlake lake compact --lake ./flowlake-data/lake           # merge each closed hour into one file
  flowlake lake compact --config processor.yaml --grace-seconds 600
  flowlake lake expire --lake s3://bucket/flows --days 30     # delete hours older than 30 days

Settings not given as flags come from the `lake:` section of --config (docs/config.md): url,
compression, storage_options, retention_days. Compaction never shows a reader a row twice or not at
all; see engine/store/maintenance.py and docs/performance.md."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("lake", help="lake maintenance: compact small files, delete old hours",
                       description="Maintain the Parquet flow lake.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["compact", "expire"], help="compact: one file per closed hour; "
                   "expire: delete hour partitions older than --days")
    p.add_argument("--config", help="processor YAML config whose `lake:` section to use")
    p.add_argument("--lake", help="lake URL (path, file://, memory://, s3://...); overrides lake.url")
    p.add_argument("--days", type=float, help="expire: retention in days (default lake.retention_days)")
    p.add_argument("--min-age-seconds", type=float, default=3600.0,
                   help="compact: only hours that ended this long ago (default 3600)")
    p.add_argument("--grace-seconds", type=float, default=300.0,
                   help="compact: delete replaced files once the merged file is this old (default 300); "
                   "longer than your slowest query")


def run(args: argparse.Namespace) -> int:
    from flowlake.engine import config
    from flowlake.engine.errors import ConfigError
    from flowlake.engine.store import maintenance, writer

    cfg = config.load(args.config, **{"lake.url": args.lake}).lake
    if args.action == "expire":
        days = args.days if args.days is not None else cfg.retention_days
        if not days or days <= 0:
            raise ConfigError("flowlake lake expire: give --days N (or set lake.retention_days in --config)")
        expired = maintenance.expire(cfg.url, days, storage_options=cfg.storage_options)
        print(json.dumps({"expired_hours": len(expired)}))
        return 0
    enc = writer.Encoding(cfg.compression, cfg.compression_level, cfg.row_group_rows)
    stats = maintenance.compact(cfg.url, min_age_seconds=args.min_age_seconds, grace_seconds=args.grace_seconds,
                                encoding=enc, storage_options=cfg.storage_options)
    json.dump({"hours_compacted": stats.hours_compacted, "files_merged": stats.files_merged, "rows": stats.rows,
               "files_deleted": stats.files_deleted}, sys.stdout)
    print()
    return 0
