"""`weatherpipe query`'s options checked against the analysis they are given to."""

from __future__ import annotations

import calendar

from weatherpipe.errors import InvalidParameter
from weatherpipe.storage.analyses import ANALYSES

# Which options each analysis takes; the rest would be silently ignored, so they are refused.
TAKES = {
    "devicedata": set(),
    "devicemax": set(),
    "daymax": {"day", "month", "year"},
    "deviceanomalies": {"minutes"},
}


def check_options(name: str, options: dict[str, int | None], script: bool = False) -> None:
    """InvalidParameter (one line, like the API's 422) for an unknown analysis, an option it
    does not take, a missing day or month (a `script` has defaults), or a day the month
    does not have."""
    if name not in ANALYSES:
        raise InvalidParameter(f"unknown analysis {name!r}; known: {', '.join(ANALYSES)}")
    given = {k for k, v in options.items() if v is not None}
    extra = sorted(given - TAKES[name])
    if extra:
        flags = ", ".join(f"--{k}" for k in extra)
        raise InvalidParameter(f"{name} does not take {flags}")
    if name != "daymax":
        return
    day, month, year = options["day"], options["month"], options["year"]
    if day is None or month is None:
        if script:
            return  # the script's SETs default to today
        raise InvalidParameter("daymax needs --day and --month")
    # Without a year, any year counts: 29 February exists (in leap years).
    last = calendar.monthrange(year if year is not None else 2000, month)[1]
    if day > last:
        in_year = f" {year}" if year is not None else ""
        raise InvalidParameter(f"day {day} does not exist in month {month}{in_year}")


def script_values(options: dict[str, int | None], dialect: str = "mysql") -> dict[str, str]:
    """The SQL expressions the printed script (MySQL or PostgreSQL) sets for the options given."""
    values = {k: str(v) for k, v in options.items() if v is not None and k != "minutes"}
    minutes = options.get("minutes")
    if minutes is not None and dialect == "postgresql":
        values["since"] = f"(now() AT TIME ZONE 'UTC') - INTERVAL '{minutes} minutes'"
    elif minutes is not None:
        values["since"] = f"UTC_TIMESTAMP(3) - INTERVAL {minutes} MINUTE"
    return values
