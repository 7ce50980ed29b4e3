"""api-load reads wrk's report: requests/s, p99 in any unit, and failures that must stop it."""

from __future__ import annotations

from benchmarks.api_load import parse_wrk

REPORT = """Running 5s test @ http://127.0.0.1:8000/healthz
  2 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    27.36ms    5.12ms  98.20ms   81.33%
    Req/Sec     1.84k   150.30     2.10k    70.00%
  Latency Distribution
     50%   26.90ms
     75%   29.01ms
     90%   32.55ms
     99%   48.12ms
  18320 requests in 5.01s, 2.60MB read
Requests/sec:   3656.12
Transfer/sec:    531.23KB
"""


def test_wrk_report_gives_rate_p99_and_no_errors() -> None:
    run = parse_wrk(REPORT)
    assert (run.requests_per_s, run.p99_ms, run.requests, run.errors) == (
        3656.12,
        48.12,
        18320,
        0,
    )


def test_p99_in_seconds_and_failures_are_counted() -> None:
    report = REPORT.replace("99%   48.12ms", "99%    1.29s").replace(
        "Requests/sec:",
        "  Socket errors: connect 0, read 2, write 0, timeout 3\n"
        "  Non-2xx or 3xx responses: 7\nRequests/sec:",
    )
    run = parse_wrk(report)
    assert run.p99_ms == 1290.0
    assert run.errors == 12
