"""The performance scenarios by name, each against a baseline from the same run."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.base import BenchOptions, Result, markdown_table

Scenario = Callable[[BenchOptions], Result]


def scenarios() -> dict[str, Scenario]:
    """Every scenario by name, in the order a full run takes them (imported only now)."""
    from benchmarks import (
        api_load,
        drain,
        e2e,
        export_memory,
        external,
        fleet_page,
        http_ingest,
        memory,
        postgres_drain,
        retention,
        sensors,
    )

    return {
        "ingest-drain": drain.ingest_drain,
        "ingest-drain-postgresql": postgres_drain.ingest_drain_postgresql,
        "scale-out": drain.scale_out,
        "embedded-drain": drain.embedded_drain,
        "sensors": sensors.sensors,
        "detection": external.detection,
        "detect-db": external.detect_db,
        "api": external.api,
        "e2e": e2e.end_to_end,
        "memory": memory.ingest_memory,
        "http-ingest": http_ingest.http_ingest,
        "api-load": api_load.api_load,
        "fleet-page": fleet_page.fleet_page,
        "prune-ingest": retention.prune_ingest,
        "prune-ingest-postgresql": retention.prune_ingest_postgresql,
        "export-memory": export_memory.export_memory,
        "export-memory-postgresql": export_memory.export_memory_postgresql,
    }


__all__ = ["BenchOptions", "Result", "Scenario", "markdown_table", "scenarios"]
