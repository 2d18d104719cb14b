"""Tenant scope: which flows a caller may see, as one Polars predicate applied before anything else.

Every query function (`run_flows`, `run_metrics`, `run_topology`, `iter_export`, the resource and
health queries) takes `scope` and calls `restrict` on the raw lake scan first, so a tenant can never
see, count or aggregate a row outside its namespaces. Called by those functions only; the API and the
Flight service turn a bearer token into a scope (`api.auth.Principal.scope`).

As in NetObserv's multi-tenancy, a tenant owns a flow when its source OR its destination namespace is
one of the tenant's namespaces.
"""

from __future__ import annotations

import polars as pl

Scope = frozenset[str] | None  # None: admin, sees every flow; a set: the tenant's namespaces


def scope_expr(namespaces: frozenset[str]) -> pl.Expr:
    """True for rows whose SrcK8S_Namespace or DstK8S_Namespace is in `namespaces` (never null).

    An empty set matches nothing: a tenant with no namespaces sees no flow at all.
    """
    if not namespaces:
        return pl.lit(False)
    names = sorted(namespaces)
    return (pl.col("SrcK8S_Namespace").is_in(names).fill_null(False)
            | pl.col("DstK8S_Namespace").is_in(names).fill_null(False))


def restrict(frame: pl.LazyFrame, scope: Scope) -> pl.LazyFrame:
    """`frame` limited to what `scope` may see (unchanged for an admin)."""
    return frame if scope is None else frame.filter(scope_expr(scope))
