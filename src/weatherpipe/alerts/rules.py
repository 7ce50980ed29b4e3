"""The alerts file: receivers and rules in TOML, validated; a bad value is one line naming it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from weatherpipe.errors import ConfigError

Severity = Literal["low", "medium", "high"]
Kind = Literal["spike", "dip", "shift", "drift", "stuck", "noise", "gap", "range"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Receiver(Strict):
    """Where notifications go: a JSON webhook, a Slack-compatible webhook, or Alertmanager."""

    name: Name
    type: Literal["webhook", "slack", "alertmanager"]
    # webhook, slack: the URL posted to; alertmanager: its base URL (…/api/v2/alerts is added).
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: Seconds = 5.0

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+\S*", value):
            raise ValueError("must be an http:// or https:// URL")
        return value


class RuleBase(Strict):
    name: Name
    devices: list[str] = Field(default_factory=list)  # empty: every device
    receivers: list[str] = Field(default_factory=list)  # empty: every receiver
    severity: Annotated[str, Field(min_length=1, max_length=20)] = "warning"  # a label


class AnomalyRule(RuleBase):
    """Fires for a device with a flagged reading of these kinds and at least this severity in
    the last `clear_minutes`; resolves when none is left in that window."""

    type: Literal["anomaly"]
    kinds: list[Kind] = Field(default_factory=list)  # empty: every kind
    min_severity: Severity = "low"
    clear_minutes: Seconds = 5.0


class ThresholdRule(RuleBase):
    """Fires for a device whose readings were all above (or below) a value for `for_minutes`
    (0: its latest reading is); resolves when one is not."""

    type: Literal["threshold"]
    above: float | None = Field(None, allow_inf_nan=False)
    below: float | None = Field(None, allow_inf_nan=False)
    for_minutes: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0

    @model_validator(mode="after")
    def _one_side(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above` and `below`")
        return self


class SilenceRule(RuleBase):
    """Fires for an enabled device that has sent nothing for `minutes`."""

    type: Literal["silence"]
    minutes: Seconds


class LagRule(RuleBase):
    """Fleet-wide: fires while ingest (newest reading's store time minus its sensor time) or
    detection (how far the detector trails the newest reading of a device) lags `seconds`."""

    type: Literal["lag"]
    stage: Literal["ingest", "detection"]
    seconds: Seconds


Rule = Annotated[AnomalyRule | ThresholdRule | SilenceRule | LagRule, Field(discriminator="type")]


class AlertsConfig(Strict):
    """The whole file."""

    interval_seconds: Seconds = 1.0  # how often the rules are evaluated
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 10
    first_retry_seconds: Seconds = 2.0
    max_retry_seconds: Seconds = 300.0
    resend_seconds: Seconds = 60.0  # Alertmanager: firing incidents re-posted this often
    receivers: list[Receiver] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> AlertsConfig:
        known = [r.name for r in self.receivers]
        for what, names in (("receivers", known), ("rules", [r.name for r in self.rules])):
            doubled = sorted({n for n in names if names.count(n) > 1})
            if doubled:
                raise ValueError(f"{what}: {doubled[0]!r} is named twice")
        for rule in self.rules:
            unknown = [n for n in rule.receivers if n not in known]
            if unknown:
                raise ValueError(f"rule {rule.name!r}: no receiver named {unknown[0]!r}")
        return self

    def receivers_of(self, rule: RuleBase) -> list[Receiver]:
        return [r for r in self.receivers if not rule.receivers or r.name in rule.receivers]

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)


def load_alerts(path: str | Path) -> AlertsConfig:
    """Read and check the alerts file; ConfigError says the file, the place and the problem."""
    where = f"WEATHERPIPE_ALERTS_FILE {path}"
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not TOML: {exc}") from None
    try:
        return AlertsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_first_problem(exc, data)}") from None


def _first_problem(exc: ValidationError, data: object) -> str:
    err = exc.errors()[0]
    # Name a rule or receiver by its name rather than its index, and drop the union's tag.
    parts: list[str] = []
    node = data
    for step in err["loc"]:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
            name = node.get("name") if isinstance(node, dict) else None
            parts[-1] = f"{parts[-1]}[{name!r}]" if name else f"{parts[-1]}[{step}]"
            continue
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(step, str) and step in ("anomaly", "threshold", "silence", "lag"):
            continue
        parts.append(str(step))
    place = ".".join(parts) or "file"
    message = err["msg"].removeprefix("Value error, ")
    given = err.get("input")
    shown = "" if isinstance(given, dict | list) or "input" not in err else f" (got {given!r})"
    return f"{place}: {message}{shown}"
