"""`weatherpipe devices` as a user runs it (a real process) on SQLite, MariaDB and PostgreSQL:
provisioning, names, places, tags, disabling, credentials shown once and kept hashed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from sqlalchemy import create_engine, text

from weatherpipe.storage.engine import upgrade
from weatherpipe.storage.repository import Repository


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "WEATHERPIPE_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "weatherpipe", "devices", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def stored(database_url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def test_a_device_provisioned_ahead_with_a_token_shown_once_and_kept_hashed(
    database_url: str,
) -> None:
    added = cli(
        database_url,
        "add",
        "greenhouse-01",
        "--name",
        "Greenhouse",
        "--latitude",
        "52.52",
        "--longitude",
        "13.405",
        "--tag",
        "roof",
        "--tag",
        "garden",
        "--description",
        "south wall",
        "--token",
    )
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("wpd_") and len(token) > 40
    assert token not in added.stderr
    ((digest, key),) = stored(
        database_url, "SELECT token_hash, hmac_key FROM devices WHERE id = 'greenhouse-01'"
    )
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert key is None
    shown = cli(database_url, "show", "greenhouse-01")
    assert shown.returncode == 0, shown.stderr
    entry = json.loads(shown.stdout)
    assert entry["name"] == "Greenhouse"
    assert (entry["latitude"], entry["longitude"]) == (52.52, 13.405)
    assert entry["tags"] == ["garden", "roof"]
    assert entry["description"] == "south wall"
    assert entry["enabled"] is True and entry["has_token"] is True
    assert entry["first_seen"] is None  # no reading yet
    assert token not in shown.stdout and digest not in shown.stdout


def test_rename_disable_enable_and_keys(database_url: str) -> None:
    assert cli(database_url, "add", "pi.kitchen_2").returncode == 0
    assert cli(database_url, "rename", "pi.kitchen_2", "Kitchen").returncode == 0
    assert cli(database_url, "disable", "pi.kitchen_2").returncode == 0
    listed = cli(database_url, "list", "--json")
    (entry,) = json.loads(listed.stdout)
    assert (entry["name"], entry["enabled"]) == ("Kitchen", False)
    assert entry["latitude"] is None
    assert cli(database_url, "enable", "pi.kitchen_2").returncode == 0
    hmac_key = cli(database_url, "key", "pi.kitchen_2", "--hmac")
    assert hmac_key.returncode == 0, hmac_key.stderr
    assert len(bytes.fromhex(hmac_key.stdout.strip())) == 32
    first = cli(database_url, "key", "pi.kitchen_2").stdout.strip()
    second = cli(database_url, "key", "pi.kitchen_2").stdout.strip()
    assert first != second
    ((digest,),) = stored(database_url, "SELECT token_hash FROM devices")
    assert digest == hashlib.sha256(second.encode()).hexdigest()  # the older token is gone
    plain = cli(database_url, "list")
    assert "Kitchen" in plain.stdout and "token+hmac" in plain.stdout


def test_bad_ids_places_and_duplicates_are_one_line_each(database_url: str) -> None:
    for args, words in [
        (("add", "Greenhouse"), "neither a canonical UUID"),
        (("add", "6B4FA32E-A7F5-4EC2-8820-6581468EF36B"), "neither a canonical UUID"),
        (("add", "x" * 65), "neither a canonical UUID"),
        (("add", "ok-1", "--latitude", "91", "--longitude", "0"), "latitude 91.0 is outside"),
        (("add", "ok-2", "--latitude", "1"), "both latitude and longitude"),
        (("rename", "nobody", "X"), "no device 'nobody'"),
        (("disable", "nobody"), "no device 'nobody'"),
    ]:
        result = cli(database_url, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert cli(database_url, "add", "twice").returncode == 0
    again = cli(database_url, "add", "twice")
    assert again.returncode == 2 and "registered already" in again.stderr


def test_a_64_character_readable_id_fits_every_table(database_url: str) -> None:
    from weatherpipe.testing import make_reading

    long_id = "a" * 64
    repo = Repository.from_url(database_url)
    try:
        upgrade(repo.engine)
        reading = make_reading(device_id=long_id)
        assert repo.store_batch([reading]).stored == 1
        assert repo.registered(long_id)[0]["first_seen"] is not None
    finally:
        repo.close()


def test_a_device_provisioned_ahead_is_harmless_until_it_sends(repo: Repository) -> None:
    from weatherpipe.detect.job import DetectionJob
    from weatherpipe.testing import make_reading

    repo.add_device("quiet-1", "Quiet", None, None)
    repo.store_batch([make_reading()])
    job = DetectionJob(repo, "default")
    job.run_once()  # a provisioned device without readings has nothing to detect
    quiet = [d for d in repo.devices() if d["device_id"] == "quiet-1"]
    assert quiet[0]["last_seen"] is None and quiet[0]["count"] == 0
    assert "quiet-1" not in repo.devices_last_seen()
    first = make_reading("quiet-1", 5.0)
    later = make_reading("quiet-1", 9.0)
    repo.store_batch([later])
    repo.store_batch([first])
    assert repo.devices_last_seen()["quiet-1"] == later.ts  # its first reading starts the span
    (entry,) = repo.registered("quiet-1")
    assert (entry["first_seen"], entry["last_seen"]) == (first.ts, later.ts)
    assert (entry["latitude"], entry["longitude"]) == (first.latitude, first.longitude)
