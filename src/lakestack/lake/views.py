"""Tables whose files disagree on string types: Arrow's view types beside plain strings.

delta-rs writes the files a MERGE rewrites (and other DataFusion rewrites) with Arrow's
``string_view``/``binary_view`` types in their embedded Arrow schema (delta-io/delta-rs#4302,
#4579), while the table's other files have plain ``string``/``binary``. One Arrow dataset over
both then fails on any filter on such a column, because its row-group pruning compares the
dataset's type with the file's ("Function 'equal' has no kernel matching input types (string,
string_view)"): a label merged into an inference table broke every ``WHERE model_id = '2'``.

``uniform_parts`` splits such a dataset into datasets whose files agree, each with the
dataset's columns in the file's types; scans then run per part (``register`` gives DuckDB their
``UNION ALL`` under the table's name). Whether a file uses view types is read from its footer
once per process: Delta files never change.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as pds

if TYPE_CHECKING:
    import duckdb

__all__ = ["read_parts", "register", "uniform_parts"]

_PLAIN = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}
_views_of: dict[str, frozenset[str]] = {}  # file path -> its view-typed columns
_lock = threading.Lock()


def uniform_parts(dataset: pds.Dataset, base: str | None = None) -> list[pds.Dataset]:
    """``[dataset]`` when its files agree on string types, else one dataset per kind of file.

    ``base`` (the table's URI) keys the per-file cache; a local table's folder is found without
    it. Without either, every call reads the footers again (one request per file on object
    storage).
    """
    if not isinstance(dataset, pds.FileSystemDataset):
        return [dataset]
    groups: dict[frozenset[str], list[pds.Fragment]] = {}
    base = base or getattr(dataset.filesystem, "base_path", None)  # a local table's folder
    try:
        fragments = list(dataset.get_fragments())
    except ValueError:  # a filtered dataset (``Dataset.filter``) hides its fragments
        return [dataset]
    for fragment in fragments:
        groups.setdefault(_view_columns(fragment, base), []).append(fragment)
    if len(groups) < 2:
        return [dataset]
    parts: list[pds.Dataset] = []
    for views, fragments in groups.items():
        schema = pa.schema(
            [f.with_type(_view_type(f.type)) if f.name in views else f for f in dataset.schema],
            metadata=dataset.schema.metadata,
        )
        parts.append(
            pds.FileSystemDataset(fragments, schema, dataset.format, filesystem=dataset.filesystem)
        )
    return parts


def register(
    con: duckdb.DuckDBPyConnection, name: str, relation: Any, base: str | None = None
) -> None:
    """``con.register(name, relation)``; a dataset of mixed files as a view over its parts."""
    parts = uniform_parts(relation, base) if isinstance(relation, pds.Dataset) else [relation]
    if len(parts) == 1:
        con.register(name, parts[0])
        return
    columns = ", ".join(_quote(c) for c in parts[0].schema.names)
    selects = []
    for i, part in enumerate(parts):
        con.register(f"{name}__part{i}", part)
        selects.append(f"SELECT {columns} FROM {_quote(f'{name}__part{i}')}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_quote(name)} AS {' UNION ALL '.join(selects)}")


def read_parts(
    dataset: pds.Dataset,
    columns: list[str] | None,
    filter: pds.Expression | None,
    parts: list[pds.Dataset] | None = None,
) -> pa.Table:
    """``dataset.to_table(columns, filter)``, per part (``uniform_parts``, computed unless
    given) when its files disagree on string types: a part in view types is read whole, cast to
    the dataset's types, then filtered."""
    if filter is None:
        return dataset.to_table(columns=columns)
    parts = parts if parts is not None else uniform_parts(dataset)
    if len(parts) == 1:
        return dataset.to_table(columns=columns, filter=filter)
    tables = []
    for part in parts:
        if part.schema == dataset.schema:
            tables.append(part.to_table(columns=columns, filter=filter))
            continue
        whole = part.to_table().cast(dataset.schema).filter(filter)
        tables.append(whole.select(columns) if columns else whole)
    return pa.concat_tables(tables)


def _view_columns(fragment: pds.Fragment, base: str | None) -> frozenset[str]:
    """The columns a file stores in view types; cached by path for local tables only (remote
    fragments' paths are relative to a handler that does not say where it points)."""
    key = f"{base}/{fragment.path}" if base is not None else None
    if key is not None and key in _views_of:
        return _views_of[key]
    views = frozenset(f.name for f in fragment.physical_schema if f.type in _PLAIN)
    if key is not None:
        with _lock:
            _views_of[key] = views
    return views


def _view_type(data_type: pa.DataType) -> pa.DataType:
    return pa.string_view() if data_type in (pa.string(), pa.large_string()) else pa.binary_view()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
