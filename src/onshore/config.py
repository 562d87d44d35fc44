"""Settings as data.

Every setting is declared once in ``SETTINGS`` with its name, type, default and help text. The
same table drives the ``onshore server`` options, the ``ONSHORE_*`` environment variables and
``docs/configuration.md`` (a test checks the docs list every setting). Precedence, highest first:
command-line option, environment variable, default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SettingType = Literal["str", "int", "float", "bool"]


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    type: SettingType
    default: str | int | float | bool | None
    help: str
    secret: bool = False
    option: bool = True  # exposed as a command-line option of ``onshore server``

    @property
    def env(self) -> str:
        return "ONSHORE_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "str", "./onshore-data", "Directory holding metadata and object data."),
    Setting("address", "str", "127.0.0.1:9000", "HOST:PORT the S3 API listens on."),
    Setting(
        "region",
        "str",
        "local-1",
        "Region this deployment serves (SigV4 scope, LocationConstraint, GetBucketLocation).",
    ),
    Setting(
        "domain",
        "str",
        None,
        "Endpoint domain for virtual-hosted-style requests "
        "(BUCKET.DOMAIN); path-style always works.",
    ),
    Setting("partition", "str", "onshore", "Partition name used in ARNs (arn:PARTITION:s3:::...)."),
    Setting(
        "root_access_key",
        "str",
        None,
        "Root access key id; generated on first start when unset.",
        option=False,
    ),
    Setting(
        "root_secret_key",
        "str",
        None,
        "Root secret key; generated on first start when unset.",
        secret=True,
        option=False,
    ),
    Setting(
        "inline_threshold",
        "int",
        65536,
        "Objects up to this many bytes are stored inside "
        "the metadata database instead of as separate files.",
    ),
    Setting(
        "max_xml_body",
        "int",
        2 * 1024 * 1024,
        "Largest XML request body accepted (bytes); larger bodies get MaxMessageLengthExceeded.",
    ),
    Setting(
        "max_header_bytes",
        "int",
        16384,
        "Largest total size of request headers "
        "(bytes); larger requests get 400 RequestHeaderSectionTooLarge.",
    ),
    Setting(
        "max_url_bytes",
        "int",
        8192,
        "Longest request line URL accepted (bytes); longer requests get 414.",
    ),
    Setting(
        "header_timeout",
        "float",
        15.0,
        "Seconds a client has to send a request's headers "
        "(slow clients get 408 and are disconnected).",
    ),
    Setting("idle_timeout", "float", 30.0, "Seconds an idle keep-alive connection is kept open."),
    Setting(
        "body_timeout",
        "float",
        60.0,
        "Seconds a client may stall while sending a request "
        "body before the request fails with RequestTimeout.",
    ),
    Setting(
        "max_connections",
        "int",
        4096,
        "Concurrent connections and in-flight requests per "
        "server process before new ones get 503 Service Unavailable.",
    ),
    Setting(
        "shutdown_timeout", "float", 30.0, "Seconds in-flight requests get to finish after SIGTERM."
    ),
    Setting(
        "workers",
        "int",
        0,
        "Server processes sharing the listening socket; 0 means one "
        "per CPU core (at most 4). Use 1 to run in a single process.",
    ),
    Setting("workers_threads", "int", 8, "Threads per process for file and database work."),
    Setting("log_level", "str", "info", "Log level: debug, info, warning, error."),
    Setting("access_log", "bool", True, "Write one structured JSON log line per request."),
    Setting(
        "encryption",
        "bool",
        True,
        "Encrypt new objects at rest (SSE-S3) unless the request asks otherwise; "
        "see docs/encryption.md.",
    ),
    Setting(
        "cipher",
        "str",
        "aes-256-gcm",
        "Cipher for data at rest and key wrapping: aes-256-gcm or sm4-gcm.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
CIPHERS = ("aes-256-gcm", "sm4-gcm")


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    address: str
    region: str
    domain: str | None
    partition: str
    root_access_key: str | None
    root_secret_key: str | None
    inline_threshold: int
    max_xml_body: int
    max_header_bytes: int
    max_url_bytes: int
    header_timeout: float
    idle_timeout: float
    body_timeout: float
    max_connections: int
    shutdown_timeout: float
    workers: int
    workers_threads: int
    log_level: str
    access_log: bool
    encryption: bool = True
    cipher: str = "aes-256-gcm"

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    @property
    def processes(self) -> int:
        """The number of server processes ``workers`` asks for."""
        if self.workers > 0:
            return self.workers
        return max(1, min(4, os.cpu_count() or 1))


def to_environ(config: Config) -> dict[str, str]:
    """The ``ONSHORE_*`` variables that reproduce ``config`` (for worker processes)."""
    out: dict[str, str] = {}
    for s in SETTINGS:
        value = getattr(config, s.name)
        if value is None:
            continue
        out[s.env] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _convert(setting: Setting, raw: str | int | float | bool | None) -> object:
    if raw is None or not isinstance(raw, str):
        return raw
    if setting.type == "int":
        return int(raw)
    if setting.type == "float":
        return float(raw)
    if setting.type == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw


def load(
    overrides: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Build the effective configuration from overrides (CLI), the environment and defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for setting in SETTINGS:
        value: object = setting.default
        if setting.env in env:
            value = env[setting.env]
        if overrides and overrides.get(setting.name) is not None:
            value = overrides[setting.name]
        try:
            values[setting.name] = _convert(setting, value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"invalid value for {setting.env}: {value!r}") from exc
    values["data_dir"] = Path(str(values["data_dir"]))
    address = str(values["address"])
    if ":" not in address or not address.rpartition(":")[2].isdigit():
        raise ValueError(f"address must be HOST:PORT, got {address!r}")
    if values["cipher"] not in CIPHERS:
        raise ValueError(f"cipher must be one of {', '.join(CIPHERS)}, got {values['cipher']!r}")
    return Config(**values)  # type: ignore[arg-type]


def setting(name: str) -> Setting:
    return _BY_NAME[name]
