"""Composition root: builds the storage, the services and the S3 application from a Config.

SQLite metadata (``<data-dir>/metadata.db``) and filesystem blobs (``<data-dir>/blobs``) are the
embedded defaults; this is the one place that chooses implementations.
"""

from __future__ import annotations

from dataclasses import dataclass

from onshore.config import Config
from onshore.s3api.app import S3App
from onshore.s3api.operations import Services, load_all
from onshore.service.blocking import Blocking
from onshore.service.buckets import BucketService
from onshore.service.credentials import RootCredentials, load_root_credentials
from onshore.service.identity import Identities
from onshore.service.listing import ListingService
from onshore.service.maintenance import sweep_orphans
from onshore.service.multipart import MultipartService
from onshore.service.objects import ObjectService
from onshore.storage.filesystem import FilesystemBlobStore
from onshore.storage.sqlite import SqliteMetadataStore

METADATA_FILE = "metadata.db"


@dataclass(frozen=True, slots=True)
class Deployment:
    app: S3App
    services: Services
    root: RootCredentials


def build(config: Config) -> Deployment:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    root = load_root_credentials(config.data_dir, config.root_access_key, config.root_secret_key)
    meta = SqliteMetadataStore(config.data_dir / METADATA_FILE)
    blobs = FilesystemBlobStore(config.data_dir)
    blocking = Blocking(config.workers_threads)
    services = Services(
        config=config,
        identities=Identities(root, partition=config.partition),
        buckets=BucketService(meta, blobs, blocking, region=config.region),
        objects=ObjectService(meta, blobs, blocking, inline_threshold=config.inline_threshold),
        multipart=MultipartService(meta, blobs, blocking),
        listing=ListingService(meta, blocking),
        blocking=blocking,
    )

    def ready() -> bool:
        try:
            meta.get_bucket("onshore")
        except Exception:  # noqa: BLE001 - readiness is a yes/no answer
            return False
        return True

    def shutdown() -> None:
        blocking.shutdown()
        meta.close()

    app = S3App(
        services,
        load_all(),
        ready=ready,
        on_startup=lambda: sweep_orphans(meta, blobs) and None,
        on_shutdown=shutdown,
    )
    return Deployment(app, services, root)
