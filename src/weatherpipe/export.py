"""Exports of readings as CSV or Parquet, written chunk by chunk as bytes: the API streams
them and `weatherpipe export` writes them to a file, with memory that stays flat however long
the range (Parquet one row group at a time, through pyarrow, the optional `export` extra)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from weatherpipe.errors import NotInstalled

if TYPE_CHECKING:
    import pyarrow as pa

Format = Literal["csv", "parquet"]
Chunks = Iterable[list[tuple[Any, ...]]]
# The columns storage/export.py reads (EXPORT_COLUMNS with the registry name second), in order,
# as the files name them.
COLUMNS = (
    "device_id",
    "name",
    "ts",
    "temperature",
    "latitude",
    "longitude",
    "seq",
    "is_anomaly",
    "anomaly_score",
    "detector",
    "kind",
    "severity",
)
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
# Rows per Parquet row group: large enough to compress well, small enough to hold (~8 MB).
ROW_GROUP_ROWS = 100_000
_TS, _FLAG = COLUMNS.index("ts"), COLUMNS.index("is_anomaly")


def encode(chunks: Chunks, format: Format) -> Iterator[bytes]:
    """The export as pieces of bytes in `format` (pyarrow is checked before anything is read)."""
    if format == "parquet":
        require_pyarrow()
        return parquet_bytes(chunks)
    return csv_bytes(chunks)


def require_pyarrow() -> None:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise NotInstalled(
            "format=parquet needs pyarrow: pip install 'weatherpipe[export]' (or use format=csv)"
        ) from None


def csv_bytes(chunks: Chunks) -> Iterator[bytes]:
    """A header line, then each chunk's rows: times as RFC 3339 UTC with milliseconds, the
    flag as true/false, NULL as an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for chunk in chunks:
        writer.writerows(_csv_row(row) for row in chunk)
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()
    if out.tell():  # nothing was exported: the header alone
        yield out.getvalue().encode()


def _csv_row(row: tuple[Any, ...]) -> list[Any]:
    values = list(row)
    values[_TS] = rfc3339(values[_TS])
    flag = values[_FLAG]
    values[_FLAG] = "" if flag is None else ("true" if flag else "false")
    return values


def rfc3339(value: datetime | str) -> str:
    """A stored timestamp (naive UTC, or its text) as 2026-11-28T01:02:03.456Z."""
    if isinstance(value, str):
        if len(value) >= 23 and value[10] == " " and value[19] == ".":
            return f"{value[:10]}T{value[11:23]}Z"  # 'YYYY-MM-DD HH:MM:SS.fff…', cut to ms
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def parquet_bytes(chunks: Chunks) -> Iterator[bytes]:
    """A Parquet file, yielded as each row group is written (the footer last)."""
    import pyarrow.parquet as pq

    schema = parquet_schema()
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[pa.RecordBatch] = []
    rows = 0
    try:
        for chunk in chunks:
            pending.append(_batch(chunk, schema))
            rows += len(chunk)
            if rows >= ROW_GROUP_ROWS:
                _write_group(writer, pending, schema)
                pending, rows = [], 0
                yield sink.take()
        if pending:
            _write_group(writer, pending, schema)
    finally:
        writer.close()
    yield sink.take()


def parquet_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("device_id", pa.string()),
            ("name", pa.string()),
            ("ts", pa.timestamp("ms", tz="UTC")),
            ("temperature", pa.float64()),
            ("latitude", pa.float64()),
            ("longitude", pa.float64()),
            ("seq", pa.int64()),
            ("is_anomaly", pa.bool_()),
            ("anomaly_score", pa.float64()),
            ("detector", pa.string()),
            ("kind", pa.string()),
            ("severity", pa.string()),
        ]
    )


def _batch(chunk: list[tuple[Any, ...]], schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    columns = list(zip(*chunk, strict=True))
    arrays = []
    for index, field in enumerate(schema):
        values: Any = columns[index]
        if index == _TS:
            values = _timestamps(values)
        elif index == _FLAG:
            values = [None if v is None else bool(v) for v in values]
        arrays.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _timestamps(values: tuple[Any, ...]) -> Any:
    """Stored times as Arrow timestamps: text is cast in Arrow (no Python datetime per row)."""
    import pyarrow as pa

    if values and isinstance(values[0], str):
        text = pa.array(values, pa.string())
        return text.cast(pa.timestamp("us")).cast(pa.timestamp("ms", "UTC"))
    return [v.replace(tzinfo=UTC) if v.tzinfo is None else v for v in values]


def _write_group(writer: Any, batches: list[pa.RecordBatch], schema: pa.Schema) -> None:
    import pyarrow as pa

    writer.write_table(pa.Table.from_batches(batches, schema=schema), row_group_size=None)


class _Drain(io.RawIOBase):
    """A write-only file that hands over what was written so far (pyarrow writes to it)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self._parts.append(piece)
        self._position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out
