"""Alerts: rules over the stored readings, incidents, and their delivery to receivers.

`rules.py` reads the TOML file (WEATHERPIPE_ALERTS_FILE); `evaluate.py` turns the rules into
incidents and queued notifications; `receivers.py` renders and sends one notification;
`delivery.py` drains the outbox with retries; `job.py` runs both as the `alerts` stage.
"""
