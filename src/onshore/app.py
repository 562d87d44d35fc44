"""Composition root: builds the storage, the services and the S3 application from a Config.

SQLite metadata (``<data-dir>/metadata.db``) and filesystem blobs (``<data-dir>/blobs``) are the
embedded defaults; this is the one place that chooses implementations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from onshore.adminapi.app import AdminApp
from onshore.adminapi.audit import AdminAudit
from onshore.adminapi.audit_access import AuditAccess
from onshore.config import Config
from onshore.iamapi.app import IamApi
from onshore.listeners import PortRouter
from onshore.s3api.app import S3App
from onshore.s3api.audit import RequestAudit
from onshore.s3api.operations import Services, load_all
from onshore.service.access import AccessControl
from onshore.service.audit import check_retention, open_trail
from onshore.service.blocking import Blocking
from onshore.service.buckets import BucketService
from onshore.service.collector import tune_collector
from onshore.service.credentials import RootCredentials, load_root_credentials
from onshore.service.encryption.defaults import BucketDefaults
from onshore.service.encryption.keys import ObjectKeys, unsealer
from onshore.service.encryption.segments import CipherName
from onshore.service.fsck import Unsealer
from onshore.service.heap import start_trimming
from onshore.service.iam import IamService
from onshore.service.identity import Identities
from onshore.service.keysource import has_root_key, root_key_for
from onshore.service.kms.keys import KmsService
from onshore.service.kms.rotation import check_no_pending_rotation
from onshore.service.kms.sweep import KeySweeper, trail_recorder
from onshore.service.kms.tenant_keys import TenantKeys
from onshore.service.licensing.wiring import licensing_for, settings_for
from onshore.service.listing import ListingService
from onshore.service.maintenance import sweep_orphans
from onshore.service.multipart import MultipartService
from onshore.service.objects import ObjectService
from onshore.service.offboarding.wiring import offboarding_for
from onshore.service.operators import Operators
from onshore.service.quotas import QuotaGuard
from onshore.service.rootkey import KeyWrapper, RootKeyError
from onshore.service.space import DiskSpace
from onshore.service.support import SupportAccess
from onshore.storage.filesystem import FilesystemBlobStore
from onshore.storage.sqlite import SqliteMetadataStore
from onshore.storage.sqlite.iam import SqliteIamStore
from onshore.storage.sqlite.schema import in_use as sqlite_in_use

METADATA_FILE = "metadata.db"


@dataclass(frozen=True, slots=True)
class Deployment:
    app: S3App
    services: Services
    root: RootCredentials
    admin: AdminApp | None = None

    def asgi(self) -> PortRouter:
        """The application a server process runs: S3 and, on its own port, the admin API."""
        config = self.services.config
        admin_port, kms_port = config.admin_host_port, config.kms_host_port
        return PortRouter(
            self.app,
            self.admin,
            admin_port[1] if admin_port else None,
            kms_port[1] if kms_port else None,
        )


def open_storage(config: Config) -> tuple[SqliteMetadataStore, FilesystemBlobStore]:
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return SqliteMetadataStore(config.data_dir / METADATA_FILE), FilesystemBlobStore(
        config.data_dir
    )


def object_keys(
    config: Config,
    meta: SqliteMetadataStore,
    blocking: Blocking,
    root_key: KeyWrapper,
    kms: KmsService | None = None,
) -> ObjectKeys:
    """Encryption at rest: root key → tenant keys (in the metadata DB) → data keys."""
    check_no_pending_rotation(config.data_dir)
    tenant_keys = TenantKeys(meta, root_key, CipherName(config.cipher))
    defaults = BucketDefaults(meta, blocking, enabled=config.encryption)
    return ObjectKeys(tenant_keys, blocking, enabled=config.encryption, defaults=defaults, kms=kms)


def offline_unsealer(config: Config, meta: SqliteMetadataStore) -> Unsealer:
    """Opens sealed data for offline tools (``onshore fsck``) with the deployment's root key;
    never creates one (without a root key, sealed data gets size checks only). RootKeyError
    when the configured one cannot be used."""
    if not has_root_key(config):
        return lambda _encryption: None
    return unsealer(TenantKeys(meta, root_key_for(config), CipherName.AES_256_GCM))


class StorageUnavailable(Exception):
    """The data directory cannot be opened for offline maintenance; the message says why."""


def open_offline(data_dir: Path) -> tuple[SqliteMetadataStore, FilesystemBlobStore]:
    """Storage for offline tools (``onshore fsck``), which must run with the server stopped.

    Refuses a directory that holds no onshore data (rather than creating an empty store), and
    one whose metadata database another process — a running server — has open.
    """
    path = data_dir / METADATA_FILE
    if not path.is_file():
        raise StorageUnavailable(f"no onshore data in {data_dir} ({METADATA_FILE} not found)")
    if sqlite_in_use(str(path)):
        raise StorageUnavailable(
            f"{path} is open in another process: stop the onshore server using {data_dir} first"
        )
    return SqliteMetadataStore(path), FilesystemBlobStore(data_dir)


def prepare(config: Config) -> RootCredentials:
    """One-time start-up work, done once before any server process accepts requests: root
    credentials and the root key (generated on first start) and the orphan sweep (which must
    not run while another process may be between writing a blob and committing it)."""
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings_for(config)  # a malformed licensor key is a clear error before any worker starts
    if config.audit:
        check_retention(config)
    root = load_root_credentials(config.data_dir, config.root_access_key, config.root_secret_key)
    check_no_pending_rotation(config.data_dir)
    root_key_for(config)  # generated (local) or checked at the key service, before any worker
    meta, blobs = open_storage(config)
    try:
        sweep_orphans(meta, blobs)
    finally:
        meta.close()
    return root


def create_app() -> PortRouter:
    """Application factory for server worker processes: configuration from ``ONSHORE_*``."""
    from onshore.cli.server import apply_connection_limits, configure_logging
    from onshore.config import load

    _die_with_parent()
    config = load()
    configure_logging(config.log_level)
    apply_connection_limits(config)
    start_trimming()
    try:
        app = build(config).asgi()
    except RootKeyError as exc:  # e.g. the key service went away since start-up: one line
        logging.getLogger("onshore").error("a server process cannot start: %s", exc)
        raise SystemExit(2) from None
    tune_collector()
    return app


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker if the supervising process dies (even by
    SIGKILL), so no orphaned worker keeps serving from a half-stopped deployment."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def build(config: Config) -> Deployment:
    root = load_root_credentials(config.data_dir, config.root_access_key, config.root_secret_key)
    meta, blobs = open_storage(config)
    root_key = root_key_for(config)  # the one read of the key in a server process
    trail = open_trail(config, meta, root_key)
    blocking = Blocking(config.workers_threads)
    kms = KmsService(meta, root_key, partition=config.partition, region=config.region)
    keys = object_keys(config, meta, blocking, root_key, kms)
    sweeper = KeySweeper(
        kms,
        interval=config.kms_sweep_seconds,
        recorder=trail_recorder(trail) if trail is not None else None,
    )
    iam_store = SqliteIamStore(meta)
    ttl = config.iam_cache_seconds
    identities = Identities(
        root, partition=config.partition, store=iam_store, wrapper=root_key, ttl=ttl
    )
    quota = QuotaGuard(iam_store, meta, blocking, ttl=ttl)
    access = AccessControl(
        meta,
        blocking,
        identities,
        partition=config.partition,
        block_public_access=config.block_public_access,
        cache_seconds=config.policy_cache_seconds,
    )

    def iam_changed() -> None:
        identities.clear()
        quota.clear()

    licensing = licensing_for(config, meta, root_key)  # None unless a licensor key is pinned
    iam = IamService(
        iam_store,
        root_key,
        blocking,
        partition=config.partition,
        root_access_key=root.access_key,
        on_change=iam_changed,
        tenant_gate=licensing.check_new_tenant if licensing is not None else None,
    )
    services = Services(
        config=config,
        identities=identities,
        buckets=BucketService(
            meta, blobs, blocking, region=config.region, regions=config.regions, quota=quota
        ),
        objects=ObjectService(
            meta,
            blobs,
            blocking,
            inline_threshold=config.inline_threshold,
            quota=quota,
            keys=keys,
        ),
        multipart=MultipartService(meta, blobs, blocking, quota, keys),
        listing=ListingService(meta, blocking),
        blocking=blocking,
        space=DiskSpace(
            config.data_dir, reserve=config.min_free_space, reusable=meta.reusable_bytes
        ),
        access=access,
        iam=iam,
        kms=kms,
    )

    def ready() -> bool:
        try:
            meta.get_bucket("onshore")
        except Exception:  # noqa: BLE001 - readiness is a yes/no answer
            return False
        return True

    if licensing is not None:
        licensing.start()
    sweeper.start()  # due KMS key deletions and rotations: now, then periodically

    def shutdown() -> None:
        sweeper.stop()
        if licensing is not None:
            licensing.stop()
        blocking.shutdown()
        if trail is not None:
            trail.close()  # flush buffered records and sign the final digest
        meta.close()

    offboarding, offboarding_gate = offboarding_for(
        config, meta, blobs, iam_store, keys.tenant_keys, root_key, blocking, iam_changed
    )
    iam_api = IamApi(iam, identities, region=config.region, offboarding=offboarding_gate)
    audit = RequestAudit(trail) if trail is not None else None
    app = S3App(
        services,
        load_all(),
        ready=ready,
        on_shutdown=shutdown,
        licensing=licensing,
        iam_api=iam_api,
        audit=audit,
        offboarding=offboarding_gate,
    )
    admin = None
    if config.admin_address:
        admin = AdminApp(
            iam,
            identities,
            Operators(meta, root_key, ttl=ttl),
            region=config.region,
            separate_roles=config.separate_operator_roles,
            log_requests=config.access_log,
            support=(
                SupportAccess(
                    meta, root_key, licensing.settings.trusted, partition=config.partition
                )
                if licensing is not None
                else None  # no licensor key pinned: the licensor has no way in at all
            ),
            offboarding=offboarding,
            audit=AdminAudit(trail) if trail is not None else None,
            audit_access=AuditAccess(config.data_dir if trail else None, blocking),
        )
    return Deployment(app, services, root, admin)
