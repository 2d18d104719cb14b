"""One Polars group_by per metric per batch: a validated definition -> filters, labels, values. Used by the sink.

`compile_metric` turns a `FlowMetricSpec` into expressions once; `plan` builds the lazy query for one
batch: filter rows, flatten list fields (item i of every flattened list together), filter items,
group by the label fields and add up the values. The result has one row per label set, labels as
strings ("" for a missing field, as FLP renders it) and the value columns named in `value_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from flowlake.engine import schema
from flowlake.engine.errors import ConfigError
from flowlake.engine.metrics import definitions
from flowlake.engine.metrics.definitions import FlowMetricSpec, MetricFilter

VALUE = "__value"  # counter total or gauge value
SUM = "__sum"  # histogram sum of observations
COUNT = "__count"  # histogram count of observations (the +Inf bucket)
_FLAT = "__flat"  # prefix of exploded list columns
_POLARS_TYPES = pl.from_arrow(schema.SCHEMA.empty_table()).schema  # type: ignore[union-attr]


def bucket_column(i: int) -> str:
    return f"__le{i}"


@dataclass(frozen=True, eq=False)
class CompiledMetric:
    """A definition ready to run: the exposed name and labels, and the Polars pieces of its query."""

    spec: FlowMetricSpec
    name: str  # with the prefix, as exposed
    kind: str  # counter, gauge or histogram
    labels: tuple[str, ...]  # exposed label names, in definition order
    buckets: tuple[float, ...]  # histogram upper bounds, without +Inf
    sources: tuple[str, ...]  # flow columns the query reads
    row_filter: pl.Expr | None
    item_filter: pl.Expr | None  # on flattened items
    label_exprs: tuple[pl.Expr, ...]  # aliased to the exposed names
    label_columns: tuple[str | None, ...]  # the flow column behind each label; None when flattened
    value: pl.Expr | None  # None: count flows
    flatten: tuple[str, ...] = field(default=())

    @property
    def value_columns(self) -> tuple[str, ...]:
        if self.kind == "histogram":
            return (*(bucket_column(i) for i in range(len(self.buckets))), SUM, COUNT)
        return (VALUE,)


def _flat(root: str) -> str:
    return f"{_FLAT}_{root}"


def _ref(spec: FlowMetricSpec, name: str) -> pl.Expr:
    """A field as seen by labels and filters: the column, a flattened item, or a key of a map item."""
    root = definitions.flattened_root(spec, name)
    if root is None:
        return pl.col(name)
    if name == root:
        return pl.col(_flat(root))
    return pl.col(_flat(root)).map.get(name[len(root) + 1:])


def _is_integer(spec: FlowMetricSpec, name: str) -> bool:
    root = definitions.flattened_root(spec, name)
    if root is not None and name != root:
        return False
    typ = _POLARS_TYPES[root or name]
    typ = typ.inner if isinstance(typ, pl.List) else typ  # type: ignore[assignment]
    return bool(typ.is_integer())


def _text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


def _equal(spec: FlowMetricSpec, flt: MetricFilter) -> pl.Expr:
    ref = _ref(spec, flt.field)
    parts = definitions.VARIABLE.split(flt.value)
    if len(parts) > 1:  # "$(SrcK8S_Namespace)-x": odd parts are field names, filled per row
        pieces = [pl.col(p).cast(pl.String).fill_null("") if i % 2 else pl.lit(p) for i, p in enumerate(parts)]
        return _text(ref) == pl.concat_str(pieces)
    if _is_integer(spec, flt.field):  # compare numbers as numbers: "2" equals FlowDirection 2
        number = float(flt.value)
        return ref == int(number) if number.is_integer() else pl.lit(False)
    return _text(ref) == flt.value


def _predicate(spec: FlowMetricSpec, flt: MetricFilter) -> pl.Expr:
    """FLP's predicate (`FLP pkg/pipeline/encode/metrics/preprocess.go`); a missing field never matches."""
    match = definitions.canonical(flt.matchType, definitions.MATCH_TYPES)
    ref = _ref(spec, flt.field)
    if match == "Presence":
        return ref.is_not_null()
    if match == "Absence":
        return ref.is_null()
    if match in ("MatchRegex", "NotMatchRegex"):
        hit = _text(ref).str.contains(flt.value).fill_null(False)  # unanchored, like Go's MatchString
        return hit if match == "MatchRegex" else ~hit
    hit = _equal(spec, flt).fill_null(False)
    return hit if match == "Equal" else ~hit


def _filters(spec: FlowMetricSpec, flat: bool) -> pl.Expr | None:
    """AND across fields, OR among the filters of one field (`FLP .../metrics/filtering.go`)."""
    by_field: dict[str, list[pl.Expr]] = {}
    for flt in spec.filters:
        if (definitions.flattened_root(spec, flt.field) is not None) == flat:
            by_field.setdefault(flt.field, []).append(_predicate(spec, flt))
    ors = [pl.any_horizontal(preds) if len(preds) > 1 else preds[0] for preds in by_field.values()]
    return pl.all_horizontal(ors) if ors else None


def _check_regexes(spec: FlowMetricSpec) -> None:
    """Polars (Rust regex) is the engine that runs them; Python's `re` accepted them already."""
    for flt in spec.filters:
        if definitions.canonical(flt.matchType, definitions.MATCH_TYPES) in ("MatchRegex", "NotMatchRegex"):
            try:
                pl.Series([""]).str.contains(flt.value)
            except pl.exceptions.PolarsError as exc:
                raise ConfigError(f"metric {spec.metricName!r}: filters[{flt.field}].value: the regex "
                                  f"{flt.value!r} is not supported ({str(exc).splitlines()[0]}); use RE2 syntax "
                                  "(no look-around or backreferences)") from exc


def compile_metric(spec: FlowMetricSpec, prefix: str, *, scale_by_sampling: bool = False) -> CompiledMetric:
    """Expressions for one validated definition; `scale_by_sampling` multiplies counter values by Sampling."""
    _check_regexes(spec)
    kind = spec.kind
    conditions: list[pl.Expr] = []
    direction = spec.flow_direction
    if direction != "Any":
        conditions.append(pl.col("FlowDirection").is_in(definitions.DIRECTION_VALUES[direction]).fill_null(False))
    if (rows := _filters(spec, flat=False)) is not None:
        conditions.append(rows)
    value: pl.Expr | None = None
    if spec.valueField:
        raw = pl.col(spec.valueField)
        conditions.append(raw.is_not_null())  # FLP skips a flow that lacks the value field
        value = raw.cast(pl.Float64)
        if kind == "counter":
            conditions.append(raw >= 0)  # a counter cannot go down
            if scale_by_sampling:
                sampling = pl.col("Sampling")
                value = value * pl.when(sampling > 0).then(sampling).otherwise(1).cast(pl.Float64)
        if spec.divisor() != 1.0:
            value = value / spec.divisor()
    elif kind != "counter":
        value = pl.lit(1.0)
    fields = {*(f.field for f in spec.filters), *spec.labels, *spec.flatten, spec.valueField}
    sources = {definitions.flattened_root(spec, f) or f for f in fields if f}
    for flt in spec.filters:
        sources.update(definitions.VARIABLE.findall(flt.value))
    if direction != "Any":
        sources.add("FlowDirection")
    if scale_by_sampling and kind == "counter" and spec.valueField:
        sources.add("Sampling")
    return CompiledMetric(
        spec=spec, name=prefix + spec.metricName, kind=kind, labels=tuple(spec.target(x) for x in spec.labels),
        buckets=spec.bucket_bounds() if kind == "histogram" else (), sources=tuple(sorted(sources)),
        row_filter=pl.all_horizontal(conditions) if conditions else None,
        item_filter=_filters(spec, flat=True),
        label_exprs=tuple(_ref(spec, x).alias(spec.target(x)) for x in spec.labels),
        label_columns=tuple(None if definitions.flattened_root(spec, x) else x for x in spec.labels),
        value=value, flatten=tuple(spec.flatten))


def _explode(lf: pl.LazyFrame, frame_schema: pl.Schema, roots: tuple[str, ...]) -> pl.LazyFrame:
    """One row per item; several lists are zipped (item i with item i), the shorter padded with nulls.

    An empty or missing list still yields one row with null items, so the flow is counted once with
    empty labels, as FLP does.
    """
    cols = [_flat(r) for r in roots]
    lf = lf.with_columns(pl.col(r).alias(_flat(r)) for r in roots)
    if len(cols) == 1:
        return lf.explode(cols[0], empty_as_null=True, keep_nulls=True)
    longest = pl.max_horizontal([pl.col(c).list.len().fill_null(0) for c in cols]).clip(lower_bound=1)
    index = pl.int_ranges(0, longest)
    return lf.with_columns(
        pl.col(c).fill_null(pl.lit([], dtype=frame_schema[r])).list.gather(index, null_on_oob=True)
        for c, r in zip(cols, roots, strict=True)
    ).explode(cols)


def null_columns(frame: pl.DataFrame) -> frozenset[str]:
    """Columns that are null in every row (no zones, no subnet labels...): constant "" labels."""
    counts = frame.null_count().row(0)
    return frozenset(c for c, n in zip(frame.columns, counts, strict=True) if n == frame.height)


def plan(frame: pl.DataFrame, m: CompiledMetric, nulls: frozenset[str] = frozenset()) -> pl.LazyFrame:
    """The lazy per-batch aggregate of `m` over `frame` (labels as strings + `m.value_columns`).

    Labels on the columns in `nulls` (see `null_columns`) are left out of the group_by and added back
    as "": the same result, and a third faster on the workload metrics' 17 labels.
    """
    missing = [c for c in m.sources if c not in frame.columns]
    lf = frame.lazy()
    if missing:  # a frame that left optional columns out: they are all null
        lf = lf.with_columns(pl.lit(None, _POLARS_TYPES[c]).alias(c) for c in missing)
    if m.row_filter is not None:
        lf = lf.filter(m.row_filter)
    if m.flatten:
        lf = _explode(lf, _POLARS_TYPES, m.flatten)
        if m.item_filter is not None:
            lf = lf.filter(m.item_filter)
    keys = [e for e, c in zip(m.label_exprs, m.label_columns, strict=True) if c is None or c not in nulls]
    keep = [*keys, *([m.value.alias(VALUE)] if m.value is not None else [])]
    lf = lf.select(keep) if keep else lf
    if m.kind == "counter":
        aggs = [pl.col(VALUE).sum() if m.value is not None else pl.len().cast(pl.Float64).alias(VALUE)]
    elif m.kind == "gauge":
        aggs = [pl.col(VALUE).last()]
    else:
        aggs = [*((pl.col(VALUE) <= b).sum().cast(pl.Float64).alias(bucket_column(i)) for i, b in enumerate(m.buckets)),
                pl.col(VALUE).sum().alias(SUM), pl.len().cast(pl.Float64).alias(COUNT)]
    if keys:
        out = lf.group_by([k.meta.output_name() for k in keys]).agg(aggs)
    else:  # one series; keep it only when a flow matched
        out = lf.select([*aggs, pl.len().alias("__n")]).filter(pl.col("__n") > 0).drop("__n")
    grouped = {k.meta.output_name() for k in keys}
    return out.select(*(pl.col(x).cast(pl.String).fill_null("") if x in grouped else pl.lit("").alias(x)
                        for x in m.labels),
                      *(pl.col(c).cast(pl.Float64) for c in m.value_columns))



def evaluate(frame: pl.DataFrame, metrics: list[CompiledMetric]) -> dict[str, pl.DataFrame]:
    """Every metric's aggregate of one batch (name -> `plan`'s output), the queries run together.

    One pass per metric, each on its pre-filtered rows: sharing one group_by between counters with
    the same labels (filters moved into the aggregations) measured 20-30% slower at 20k pods.
    """
    nulls = null_columns(frame)
    results = pl.collect_all([plan(frame, m, nulls) for m in metrics])
    return {m.name: r for m, r in zip(metrics, results, strict=True)}
