"""schemathesis over /openapi.json, in process: no server errors, answers match the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import schemathesis
from hypothesis import HealthCheck, given, settings

from weatherpipe.compose import make_api
from weatherpipe.config import load_settings
from weatherpipe.storage.repository import Repository, Scored
from weatherpipe.testing import DEVICE_A, DEVICE_B, series

EXAMPLES = 30
# Schema-valid is not always valid: day 31 of month 2 fits `day <= 31` and is still a 422,
# on purpose. Every other check runs: no 5xx, documented status codes and content types,
# answers that match their schema, and bad input rejected.
positive_data_acceptance = schemathesis.checks.positive_data_acceptance


def test_every_operation_answers_without_server_errors_and_as_documented(
    sqlite_repo: Repository,
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    sqlite_repo.store_batch(series([10.0, 14.5, 12.0, 11.0], DEVICE_A, start=start))
    sqlite_repo.store_batch(series([30.0, 31.0], DEVICE_B, start=start - timedelta(days=3)))
    rows = sqlite_repo.readings_after(DEVICE_A, None, 10)
    sqlite_repo.save_detection("t", DEVICE_A, rows[-1][1], "{}", [Scored(rows[1][0], 0.9, True)])
    app = make_api(load_settings(database_url=str(sqlite_repo.engine.url)), sqlite_repo)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        answers_as_documented()
