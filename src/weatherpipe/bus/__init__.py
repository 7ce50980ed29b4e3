"""Message buses behind one interface; create_bus(url) picks the backend by scheme."""

from __future__ import annotations

import importlib

from weatherpipe.bus.base import Bus, Message
from weatherpipe.errors import ConfigError

BACKENDS = {
    "memory": "weatherpipe.bus.memory:MemoryBus",
    "nats": "weatherpipe.bus.nats:NatsBus",
    "mqtt": "weatherpipe.bus.mqtt:MqttBus",
    "pubsub": "weatherpipe.bus.pubsub:PubSubBus",
}


def create_bus(url: str, topic: str = "weather_topic", subscription: str = "weather_sub") -> Bus:
    """Build the bus for `url`; the backend module is imported only now."""
    scheme = url.split("://", 1)[0]
    if scheme not in BACKENDS or "://" not in url:
        raise ConfigError(f"WEATHERPIPE_BUS_URL: unknown bus {url!r} (use {', '.join(BACKENDS)})")
    module_name, class_name = BACKENDS[scheme].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"WEATHERPIPE_BUS_URL: the {scheme} backend needs its extra: "
            f"pip install 'weatherpipe[{scheme}]' ({exc.name} is missing)"
        ) from None
    bus_class: type[Bus] = getattr(module, class_name)
    return bus_class(url, topic, subscription)


__all__ = ["Bus", "Message", "create_bus"]
