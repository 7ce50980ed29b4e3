"""weatherpipe: a real-time IoT temperature pipeline."""

__version__ = "0.1.0"
