"""Settings as data.

Every setting is declared once in ``SETTINGS`` with its name, type, default and help text. The
same table drives the ``onshore server`` options, the ``ONSHORE_*`` environment variables, the
keys of the configuration file and ``docs/configuration.md`` (a test checks the docs list every
setting). Precedence, highest first: command-line option, environment variable, configuration
file, default. :func:`resolve` says where each effective value came from (``onshore config
show`` prints it).

The configuration file is TOML (``onshore.toml``): named by ``--config`` / ``ONSHORE_CONFIG``,
or ``./onshore.toml`` when that exists. Its top-level keys are setting names; ``destinations``
is an array of tables (see :class:`Destination`). An unknown key or a value of the wrong type is
an error that names the file and the key, never silently ignored.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

SettingType = Literal["str", "int", "float", "bool", "list", "json"]
Source = Literal["default", "file", "env", "cli"]
DEFAULT_FILE = "onshore.toml"


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
        "certs_dir",
        "str",
        None,
        "Directory holding public.crt and private.key (PEM): the S3 API, the admin API and the "
        "KMS endpoint (kms_address) are then served over HTTPS only.",
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
        "regions",
        "list",
        None,
        "Every region of the deployment (comma-separated); unset means only `region`. A "
        "LocationConstraint outside this list is InvalidLocationConstraint.",
    ),
    Setting(
        "jurisdiction",
        "str",
        None,
        "ISO 3166-1 alpha-2 code of the legal area the data must stay in (e.g. CN, FR). "
        "Destinations must declare the same one.",
    ),
    Setting(
        "destinations",
        "json",
        None,
        "Residency allow-list: the only endpoints data may be sent to (replication, "
        "notifications, webhooks), each {name, endpoint, jurisdiction}; a destination outside "
        "the jurisdiction is refused at start-up. An array of tables in the file, JSON in the "
        "environment.",
        option=False,
    ),
    Setting(
        "config",
        "str",
        None,
        "Configuration file (TOML) whose keys are the settings here; default ./onshore.toml "
        "when it exists.",
    ),
    Setting(
        "block_public_access",
        "bool",
        True,
        "Deployment-wide Block Public Access: refuse bucket policies that grant the public "
        "and ignore the public grants of stored ones (as an AWS account-level block).",
    ),
    Setting(
        "policy_cache_seconds",
        "float",
        1.0,
        "Seconds a server process caches a bucket's policy and owner; other processes see "
        "policy changes within this time.",
    ),
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
        "min_free_space",
        "int",
        64 * 1024 * 1024,
        "Bytes of free disk space kept in reserve for deletes: writes that would go below it "
        "get 507 InsufficientStorage (0 disables the reserve).",
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
        "Server processes (each with its own listening socket on Linux); 0 means one "
        "per CPU core (at most 4). Use 1 to run in a single process.",
    ),
    Setting("workers_threads", "int", 8, "Threads per process for file and database work."),
    Setting("log_level", "str", "info", "Log level: debug, info, warning, error."),
    Setting("access_log", "bool", True, "Write one structured JSON log line per request."),
    Setting(
        "licensor_public_keys",
        "str",
        None,
        "Pinned licensor public keys (ed25519:BASE64, comma-separated); when unset, licensing "
        "is inactive and onshore runs unrestricted. See docs/licensing.md.",
    ),
    Setting(
        "license_required",
        "bool",
        True,
        "With licensor keys pinned: refuse new writes while no valid license is installed.",
    ),
    Setting(
        "license_refresh_seconds",
        "float",
        60.0,
        "Seconds between license re-checks, clock checks and usage-counter flushes.",
    ),
    Setting(
        "admin_address",
        "str",
        "127.0.0.1:9001",
        "HOST:PORT the operator admin API (JSON, operators only) listens on; empty to disable it.",
    ),
    Setting(
        "kms_address",
        "str",
        "",
        "HOST:PORT on which the AWS KMS API also listens on its own (as kms.REGION.amazonaws.com "
        "does); empty: only on the S3 port, as X-Amz-Target TrentService requests.",
    ),
    Setting(
        "kms_sweep_seconds",
        "float",
        300.0,
        "Seconds between sweeps that carry out due KMS key deletions and automatic key "
        "rotations (one also runs at start-up); see docs/encryption.md.",
    ),
    Setting(
        "separate_operator_roles",
        "bool",
        False,
        "Separation of duties (MLPS, SecNumCloud): the root credentials keep only the system "
        "administrator role; key, policy and audit work needs named operators "
        "(onshore operator create).",
    ),
    Setting(
        "iam_cache_seconds",
        "float",
        5.0,
        "Seconds a server process caches access keys, identity policies and quotas; changes "
        "made through another process take effect within this delay.",
    ),
    Setting("audit", "bool", True, "Record every request in the tamper-evident audit trail."),
    Setting("audit_hash", "str", "sha256", "Hash of the audit chain: sha256 or sm3."),
    Setting(
        "audit_flush_interval",
        "float",
        1.0,
        "Seconds audit records of reads may wait in memory before they are committed.",
    ),
    Setting(
        "audit_digest_minutes",
        "float",
        60.0,
        "Minutes between signed audit digests (one is also signed at shutdown).",
    ),
    Setting(
        "audit_retention_days",
        "int",
        180,
        "Days audit records are kept; less than 180 is refused without audit_retention_override.",
    ),
    Setting(
        "audit_retention_override",
        "bool",
        False,
        "Allow audit_retention_days below the 180-day regulatory minimum.",
    ),
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
    Setting(
        "root_key_service",
        "str",
        "local",
        "Who holds the root key: local (a key file in the data directory, or "
        "ONSHORE_ROOT_KEY/ONSHORE_ROOT_KEY_FILE) or transit (a key that never leaves an "
        "OpenBao/Vault Transit engine); see docs/encryption.md.",
    ),
    Setting(
        "transit_address",
        "str",
        None,
        "With root_key_service = transit: URL of the OpenBao/Vault server, "
        "https://HOST:PORT (plain http only to a loopback address).",
    ),
    Setting("transit_mount", "str", "transit", "Path the Transit secrets engine is mounted at."),
    Setting("transit_key", "str", "onshore", "Name of the Transit key that is the root key."),
    Setting(
        "transit_token",
        "str",
        None,
        "Token onshore authenticates to the key service with (needs read on "
        "MOUNT/keys/KEY, update on MOUNT/encrypt/KEY and MOUNT/decrypt/KEY).",
        secret=True,
        option=False,
    ),
    Setting(
        "transit_token_file",
        "str",
        None,
        "File holding the token (mode 0600 or stricter) when transit_token is unset; read "
        "again on every call, so an agent can renew or replace it.",
    ),
    Setting(
        "transit_namespace",
        "str",
        None,
        "Namespace of the Transit engine (X-Vault-Namespace), if the server uses namespaces.",
    ),
    Setting(
        "transit_ca_file",
        "str",
        None,
        "PEM bundle of the CA(s) that sign the key service's certificate; default: the "
        "system's trusted CAs.",
    ),
    Setting(
        "transit_timeout",
        "float",
        5.0,
        "Seconds each network operation with the key service may take before the call fails.",
    ),
    Setting(
        "transit_cache_seconds",
        "float",
        30.0,
        "Seconds a server process keeps a secret the key service unwrapped (0: ask every "
        "time); a key deleted or a token revoked at the service takes effect within this time.",
    ),
    Setting(
        "offboarding_notice_days",
        "int",
        21,
        "Default notice period (days) of a tenant offboarding, during which the tenant can "
        "still read and export but not write (SecNumCloud 19.4); see docs/offboarding.md.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
CIPHERS = ("aes-256-gcm", "sm4-gcm")

_JURISDICTION = re.compile(r"[A-Z]{2}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the setting and, when it matters, the
    file or variable it came from."""


@dataclass(frozen=True, slots=True)
class Destination:
    """An endpoint data may be sent to (a replication target, a notification or webhook
    endpoint), declared with the jurisdiction it sits in. Only destinations inside the
    deployment's jurisdiction are accepted: this list is how data residency is enforced."""

    name: str
    endpoint: str
    jurisdiction: str


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    address: str
    region: str
    certs_dir: str | None
    domain: str | None
    partition: str
    regions: tuple[str, ...]
    jurisdiction: str | None
    destinations: tuple[Destination, ...]
    config: str | None
    block_public_access: bool
    policy_cache_seconds: float
    root_access_key: str | None
    root_secret_key: str | None
    inline_threshold: int
    min_free_space: int
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
    licensor_public_keys: str | None
    license_required: bool
    license_refresh_seconds: float
    admin_address: str
    kms_address: str
    kms_sweep_seconds: float
    separate_operator_roles: bool
    iam_cache_seconds: float
    audit: bool
    audit_hash: str
    audit_flush_interval: float
    audit_digest_minutes: float
    audit_retention_days: int
    audit_retention_override: bool
    encryption: bool
    cipher: str
    root_key_service: str
    transit_address: str | None
    transit_mount: str
    transit_key: str
    transit_token: str | None
    transit_token_file: str | None
    transit_namespace: str | None
    transit_ca_file: str | None
    transit_timeout: float
    transit_cache_seconds: float
    offboarding_notice_days: int

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    @property
    def tls_files(self) -> tuple[Path, Path] | None:
        """``(certificate chain, private key)`` when serving HTTPS."""
        if self.certs_dir is None:
            return None
        folder = Path(self.certs_dir)
        return folder / "public.crt", folder / "private.key"

    @property
    def scheme(self) -> str:
        return "https" if self.certs_dir is not None else "http"

    @property
    def admin_host_port(self) -> tuple[str, int] | None:
        """Where the admin API listens, or None when it is disabled."""
        if not self.admin_address:
            return None
        host, _, port = self.admin_address.rpartition(":")
        return host or "127.0.0.1", int(port)

    @property
    def kms_host_port(self) -> tuple[str, int] | None:
        """Where the KMS API listens on its own, or None (then only on the S3 port)."""
        if not self.kms_address:
            return None
        host, _, port = self.kms_address.rpartition(":")
        return host or "127.0.0.1", int(port)

    @property
    def processes(self) -> int:
        """The number of server processes ``workers`` asks for."""
        if self.workers > 0:
            return self.workers
        return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class Resolved:
    """One setting's effective value and where it came from (``origin`` names the file,
    variable or option)."""

    setting: Setting
    value: object
    source: Source
    origin: str

    def shown(self) -> str:
        """The value as ``onshore config show`` prints it: secrets masked."""
        if self.value is None:
            return ""
        if self.setting.secret:
            return "********"
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        if isinstance(self.value, tuple):
            if self.setting.type == "json":
                return json.dumps([_plain(item) for item in self.value])
            return ",".join(str(item) for item in self.value)
        return str(self.value)


def to_environ(config: Config) -> dict[str, str]:
    """The ``ONSHORE_*`` variables that reproduce ``config`` (for worker processes)."""
    out: dict[str, str] = {}
    for s in SETTINGS:
        value = getattr(config, s.name)
        if value is None:
            continue
        out[s.env] = _to_text(s, value)
    return out


def _to_text(setting: Setting, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if setting.type == "json":
        return json.dumps([_plain(item) for item in value])  # type: ignore[attr-defined]
    if setting.type == "list":
        return ",".join(value)  # type: ignore[arg-type]
    return str(value)


def _plain(item: object) -> object:
    if isinstance(item, Destination):
        return {"name": item.name, "endpoint": item.endpoint, "jurisdiction": item.jurisdiction}
    return item


def _convert(setting: Setting, raw: object) -> object:
    """A raw value (text from the environment or a CLI option, or a TOML value) as the
    setting's type; ``ValueError`` says what was expected."""
    if raw is None:
        return None
    kind = setting.type
    if isinstance(raw, str):
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if kind == "list":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if kind == "json":
            return _convert(setting, json.loads(raw))
        return raw
    expected: dict[str, tuple[type, ...]] = {
        "str": (str,),
        "int": (int,),
        "float": (int, float),
        "bool": (bool,),
        "list": (list, tuple),
        "json": (list, tuple),
    }
    if isinstance(raw, bool) and kind != "bool" or not isinstance(raw, expected[kind]):
        raise ValueError(f"expected {kind}, got {type(raw).__name__}")
    if kind == "float":
        return float(raw)  # type: ignore[arg-type]
    if kind == "list":
        if not all(isinstance(item, str) for item in raw):  # type: ignore[attr-defined]
            raise ValueError("expected a list of strings")
        return tuple(raw)  # type: ignore[arg-type]
    if kind == "json":
        return tuple(_destination(item) for item in raw)  # type: ignore[attr-defined]
    return raw


def _destination(item: object) -> Destination:
    fields = {"name", "endpoint", "jurisdiction"}
    if not isinstance(item, Mapping) or set(item) != fields:
        raise ValueError("each destination needs exactly: name, endpoint, jurisdiction")
    if not all(isinstance(item[k], str) for k in fields):
        raise ValueError("destination fields are strings")
    return Destination(item["name"], item["endpoint"], item["jurisdiction"])


def config_file(
    overrides: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Path | None, Source]:
    """The configuration file to read (and what named it), or ``None`` when there is none."""
    env = os.environ if environ is None else environ
    if overrides and overrides.get("config"):
        return Path(str(overrides["config"])), "cli"
    if env.get(_BY_NAME["config"].env):
        return Path(env[_BY_NAME["config"].env]), "env"
    if Path(DEFAULT_FILE).is_file():
        return Path(DEFAULT_FILE), "default"
    return None, "default"


def read_file(path: Path) -> dict[str, Any]:
    """The settings in a TOML configuration file, checked against :data:`SETTINGS`."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(document) - set(_BY_NAME) | ({"config"} & set(document)))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    return document


def resolve(
    overrides: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> list[Resolved]:
    """Every setting's effective value and its source, before cross-setting checks."""
    env = os.environ if environ is None else environ
    path, _ = config_file(overrides, env)
    from_file = read_file(path) if path is not None else {}
    resolved: list[Resolved] = []
    for setting in SETTINGS:
        raw: object = setting.default
        source: Source = "default"
        origin = ""
        if setting.name in from_file:
            raw, source, origin = from_file[setting.name], "file", str(path)
        if setting.env in env:
            raw, source, origin = env[setting.env], "env", setting.env
        if overrides and overrides.get(setting.name) is not None:
            raw, source, origin = overrides[setting.name], "cli", setting.flag
        if setting.name == "config" and path is not None:
            raw = str(path)
        try:
            value = _convert(setting, raw)
        except (ValueError, TypeError) as exc:
            where = origin or "the default"
            raise ConfigError(f"invalid value for {setting.name} (from {where}): {exc}") from None
        resolved.append(Resolved(setting, value, source, origin))
    return resolved


def load(
    overrides: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Build the effective, validated configuration (see the module docstring)."""
    values: dict[str, Any] = {r.setting.name: r.value for r in resolve(overrides, environ)}
    values["data_dir"] = Path(str(values["data_dir"]))
    address = str(values["address"])
    if ":" not in address or not address.rpartition(":")[2].isdigit():
        raise ConfigError(f"address must be HOST:PORT, got {address!r}")
    admin = str(values["admin_address"] or "")
    if admin and (":" not in admin or not admin.rpartition(":")[2].isdigit()):
        raise ConfigError(f"admin_address must be HOST:PORT or empty, got {admin!r}")
    kms = str(values["kms_address"] or "")
    if kms and (":" not in kms or not kms.rpartition(":")[2].isdigit()):
        raise ConfigError(f"kms_address must be HOST:PORT or empty, got {kms!r}")
    if not float(values["kms_sweep_seconds"]) > 0:
        raise ConfigError(f"kms_sweep_seconds must be positive, got {values['kms_sweep_seconds']}")
    if values["cipher"] not in CIPHERS:
        raise ConfigError(f"cipher must be one of {', '.join(CIPHERS)}, got {values['cipher']!r}")
    _check_identity(values)
    config = Config(**values)
    _check_tls(config)
    return config


def _check_tls(config: Config) -> None:
    """Refuse a certificate directory that cannot be served, before anything listens."""
    files = config.tls_files
    if files is None:
        return
    for path in files:
        if not path.is_file():
            raise ConfigError(f"certs_dir: {path} is missing (needs public.crt and private.key)")
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(files[0], files[1])
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"certs_dir: {files[0]} and {files[1]} are not a usable certificate and key: "
            f"{getattr(exc, 'reason', None) or exc}"
        ) from None


def _check_identity(values: dict[str, Any]) -> None:
    """Partition, regions, jurisdiction and destinations: the deployment's identity and its
    residency rules, checked at start-up so a misconfigured region never serves."""
    for name in ("partition", "region"):
        if not _NAME.fullmatch(str(values[name])):
            raise ConfigError(f"{name} must be letters, digits, '.', '_' or '-': {values[name]!r}")
    region = values["region"]
    regions = values["regions"] or (region,)
    for other in regions:
        if not _NAME.fullmatch(other):
            raise ConfigError(f"regions: {other!r} is not a valid region name")
    if region not in regions:
        raise ConfigError(f"region {region!r} is not in regions ({', '.join(regions)})")
    values["regions"] = tuple(dict.fromkeys(regions))
    jurisdiction = values["jurisdiction"]
    if jurisdiction is not None and not _JURISDICTION.fullmatch(jurisdiction):
        raise ConfigError(
            f"jurisdiction must be an ISO 3166-1 alpha-2 code such as CN or FR: {jurisdiction!r}"
        )
    destinations: tuple[Destination, ...] = values["destinations"] or ()
    for destination in destinations:
        if not destination.endpoint.startswith(("https://", "http://")):
            raise ConfigError(
                f"destination {destination.name!r}: endpoint must be an http(s) URL, "
                f"got {destination.endpoint!r}"
            )
        if jurisdiction is None:
            raise ConfigError(
                f"destination {destination.name!r} is declared but the deployment has no "
                "jurisdiction: set jurisdiction first"
            )
        if destination.jurisdiction != jurisdiction:
            raise ConfigError(
                f"destination {destination.name!r} ({destination.endpoint}) is in "
                f"{destination.jurisdiction!r}, outside this deployment's jurisdiction "
                f"{jurisdiction!r}: data may not be sent there"
            )
    values["destinations"] = destinations


def setting(name: str) -> Setting:
    return _BY_NAME[name]
