"""The schema: tables of readings, devices, dead letters, rollups and detector state."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

# Milliseconds are part of a reading's identity, so MySQL must keep them (DATETIME(3)).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=3), "mysql", "mariadb")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
# Double precision everywhere (MySQL's FLOAT is single precision), read back as float: a
# MySQL DOUBLE is otherwise a Decimal rounded to 10 places (the contract test caught it).
Double = Float(precision=53).with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb")
# Dead letters keep their raw bytes, up to 16 MiB on MySQL (MEDIUMBLOB).
Blob = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
# Detector state as JSON text, up to 16 MiB on MySQL (MEDIUMTEXT; TEXT stops at 64 KiB).
JsonText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
# What a flag says it is: a kind (spike, dip, shift, ...) and a severity (low, medium, high).
Label = String(10)
# A device id: a canonical UUID or a readable id (reading.DEVICE_ID: up to 64 characters).
DeviceId = String(64)

devices = Table(
    "devices",
    metadata,
    Column("id", DeviceId, primary_key=True),
    Column("name", String(100), nullable=True),
    # The registered place, or the place of the last reading; NULL for a device provisioned
    # without one that has sent nothing yet.
    Column("latitude", Double, nullable=True),
    Column("longitude", Double, nullable=True),
    # NULL until the device's first reading (a device provisioned ahead has none yet).
    Column("first_seen", Timestamp, nullable=True),
    Column("last_seen", Timestamp, nullable=True),
    # The device's own sensitivity (expected false alarms a day); NULL: the global setting.
    Column("false_alarms_per_day", Double, nullable=True),
    # The registry: what a person says about the device, and its credentials.
    Column("description", String(500), nullable=True),
    Column("tags", String(500), nullable=True),  # comma-separated, sorted
    Column("enabled", Boolean, nullable=False, server_default=true()),
    # sha256 hex of the device's bearer token (the token is shown once, never stored).
    Column("token_hash", String(64), nullable=True),
    # The device's HMAC-SHA256 signing key, hex (needed to verify, so kept as it is).
    Column("hmac_key", String(128), nullable=True),
    UniqueConstraint("token_hash", name="uq_devices_token_hash"),
)

readings = Table(
    "readings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device_id", DeviceId, nullable=False),
    Column("ts", Timestamp, nullable=False),
    Column("temperature", Double, nullable=False),
    Column("latitude", Double, nullable=False),
    Column("longitude", Double, nullable=False),
    Column("seq", BigInteger, nullable=True),
    Column("received_at", Timestamp, nullable=False),
    Column("is_anomaly", Boolean, nullable=True),
    Column("anomaly_score", Double, nullable=True),
    Column("detector", String(40), nullable=True),
    Column("kind", Label, nullable=True),
    Column("severity", Label, nullable=True),
    UniqueConstraint("device_id", "ts", name="uq_readings_device_ts"),
    Index("ix_readings_anomaly_ts", "is_anomaly", "ts"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("data", Blob, nullable=False),
    Column("attributes", Text, nullable=True),
    Column("reason", String(500), nullable=False),
    Column("received_at", Timestamp, nullable=False),
    Column("replayed_at", Timestamp, nullable=True),
    # The message's key (ingest/refusals.py), so a redelivery stores no second copy; NULL
    # for rows from before migration 0005.
    Column("message_key", String(32), nullable=True),
    Index("ix_dead_letters_received", "received_at"),
    Index("uq_dead_letters_message_key", "message_key", unique=True),
)

readings_minute = Table(
    "readings_minute",
    metadata,
    Column("device_id", DeviceId, nullable=False),
    Column("minute", Timestamp, nullable=False),
    Column("n", Integer, nullable=False),
    Column("t_min", Double, nullable=False),
    Column("t_max", Double, nullable=False),
    Column("t_sum", Double, nullable=False),
    PrimaryKeyConstraint("device_id", "minute", name="pk_readings_minute"),
)

# Daily rollups carry year, month and day-of-month as columns so "max on day D of month M"
# is an indexed lookup on every database without date functions.
readings_daily = Table(
    "readings_daily",
    metadata,
    Column("device_id", DeviceId, nullable=False),
    Column("day", Date, nullable=False),
    Column("year", Integer, nullable=False),
    Column("month", Integer, nullable=False),
    Column("dom", Integer, nullable=False),
    Column("n", BigInteger, nullable=False),
    Column("t_min", Double, nullable=False),
    Column("t_max", Double, nullable=False),
    Column("t_sum", Double, nullable=False),
    PrimaryKeyConstraint("device_id", "day", name="pk_readings_daily"),
    Index("ix_readings_daily_month_dom", "month", "dom"),
)

detector_state = Table(
    "detector_state",
    metadata,
    Column("device_id", DeviceId, nullable=False),
    Column("detector", String(40), nullable=False),
    Column("last_ts", Timestamp, nullable=False),
    Column("state", JsonText, nullable=False),  # the detector's to_state(), as JSON
    Column("updated_at", Timestamp, nullable=False),
    Column("warming_up", Boolean, nullable=True),
    # The sensitivity the state was built with; NULL: the detector's default.
    Column("false_alarms_per_day", Double, nullable=True),
    PrimaryKeyConstraint("device_id", "detector", name="pk_detector_state"),
)

# Ground truth of the anomalies the simulator injected, so a run can score its own detection.
injected_anomalies = Table(
    "injected_anomalies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("device_id", DeviceId, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("start_ts", Timestamp, nullable=False),
    Column("end_ts", Timestamp, nullable=False),
    UniqueConstraint("device_id", "start_ts", name="uq_injected_device_start"),
)

# The original deployment's table name and columns, as a view over readings.
WEATHER_TRANS_VIEW = (
    "CREATE VIEW weather_trans AS SELECT id, device_id AS deviceid, temperature, latitude, "
    "longitude, ts AS time, COALESCE(is_anomaly, 0) AS isanomal FROM readings"
)
# PostgreSQL's boolean does not COALESCE with an integer; the view still answers 0 or 1.
WEATHER_TRANS_VIEW_POSTGRESQL = (
    "CREATE VIEW weather_trans AS SELECT id, device_id AS deviceid, temperature, latitude, "
    "longitude, ts AS time, CASE WHEN is_anomaly THEN 1 ELSE 0 END AS isanomal FROM readings"
)

# Alerts (weatherpipe.alerts): incidents, the delivery outbox, and each delivery attempt.
# An incident is open while `open_key` (rule and device) is set; the unique key makes a second
# open incident of the same rule and device impossible, whichever process evaluates.
alert_incidents = Table(
    "alert_incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", String(100), nullable=False),
    Column("device_id", DeviceId, nullable=False),  # "" for a fleet-wide rule (lag)
    Column("open_key", String(170), nullable=True),
    Column("started_at", Timestamp, nullable=False),
    Column("resolved_at", Timestamp, nullable=True),
    Column("summary", String(500), nullable=False),
    UniqueConstraint("open_key", name="uq_alert_incidents_open_key"),
    Index("ix_alert_incidents_started", "started_at"),
)

# One notification to one receiver (several incidents of one rule grouped), kept until delivered
# or given up: the outbox that retries survive a restart with, and the delivery log.
alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", String(100), nullable=False),
    Column("receiver", String(100), nullable=False),
    Column("status", String(10), nullable=False),  # firing, resolved or test
    Column("payload", JsonText, nullable=False),  # the receiver-neutral group, as JSON
    Column("created_at", Timestamp, nullable=False),
    Column("state", String(10), nullable=False),  # pending, delivered or failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("claimed_until", Timestamp, nullable=True),  # a sender is on it until then
    Column("delivered_at", Timestamp, nullable=True),
    Column("last_error", String(500), nullable=True),
    Index("ix_alert_notifications_due", "state", "next_attempt_at"),
)

alert_attempts = Table(
    "alert_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("notification_id", Id, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", Timestamp, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", String(500), nullable=True),
    Column("seconds", Double, nullable=False),
    Index("ix_alert_attempts_notification", "notification_id"),
)
