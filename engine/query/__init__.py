"""Lake queries: console filter strings compiled to Polars, and flow-table queries over the lake.

The front door for the API (`/api/flows`), the Arrow Flight query service and the Python client. The
other query kinds live in their modules: `timeseries` (metrics), `topology`, `export` (streamed
batches), `resources` (autocomplete values), `health` (health rules and score); `tenancy` scopes them all.
"""

from __future__ import annotations

from flowlake.engine.query.filters import compile_filters
from flowlake.engine.query.flows import FlowQuery, QueryError, QueryStats, run_flows

__all__ = ["FlowQuery", "QueryError", "QueryStats", "compile_filters", "run_flows"]
