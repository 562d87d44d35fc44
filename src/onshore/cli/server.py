"""``onshore server``: configure logging, build the deployment, serve it with uvicorn.

uvicorn runs with uvloop and httptools, no access log of its own (the app writes one structured
line per request), and a graceful shutdown on SIGTERM/SIGINT: new connections are refused,
in-flight requests get ``shutdown_timeout`` seconds, then the metadata store is closed.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Mapping

from onshore.config import Config, load


class _Formatter(logging.Formatter):
    """Access lines are already JSON; other records become one JSON-ish line too."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "onshore.access":
            return record.getMessage()
        import json

        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def banner(config: Config, access_key: str, secret_key: str | None) -> str:
    endpoint = f"{config.scheme}://{config.host}:{config.port}"
    lines = [f"onshore S3 API: {endpoint}  (region {config.region}, data {config.data_dir})"]
    if config.admin_address:
        lines.append(
            f"onshore admin API: {config.scheme}://{config.admin_address}  (operators only)"
        )
    if config.kms_address:
        lines.append(f"onshore KMS API: {config.scheme}://{config.kms_address}")
    if secret_key is not None:
        lines += [
            "Root credentials were generated and saved (mode 0600) in "
            f"{config.data_dir / 'root-credentials.json'}; they are shown only this once:",
            f"  AccessKey: {access_key}",
            f"  SecretKey: {secret_key}",
            "Try it:",
            f"  export AWS_ACCESS_KEY_ID={access_key} AWS_SECRET_ACCESS_KEY={secret_key} "
            f"AWS_DEFAULT_REGION={config.region}",
            f"  aws --endpoint-url {endpoint} s3 mb s3://my-bucket",
        ]
    else:
        lines.append(f"Root access key: {access_key}")
    return "\n".join(lines)


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (workers inherit it).

    Each connection is a file descriptor; a default soft limit of 1,024 would make the server
    stop accepting (``EMFILE``) long before ``max_connections``. Returns the new soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


def apply_connection_limits(config: Config) -> None:
    """Configure the limits of :mod:`onshore.s3api.protocol` for this process."""
    from onshore.s3api import protocol

    protocol.configure(
        protocol.Limits(
            max_url_bytes=config.max_url_bytes,
            max_header_bytes=config.max_header_bytes,
            header_timeout=config.header_timeout,
            idle_timeout=config.idle_timeout,
            max_connections=config.max_connections,
        )
    )


def run(overrides: Mapping[str, object]) -> int:
    import os

    from onshore.app import build, prepare
    from onshore.config import to_environ
    from onshore.service.rootkey import RootKeyError

    try:
        config = load(overrides)
    except ValueError as exc:
        print(f"onshore: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    raise_open_file_limit()
    try:
        root = prepare(config)
    except (ValueError, RootKeyError) as exc:
        print(f"onshore: {exc}", file=sys.stderr)
        return 2
    print(banner(config, root.access_key, root.secret_key if root.created else None), flush=True)
    if config.processes > 1:
        # Worker processes rebuild the configuration from the environment. Two malloc arenas
        # instead of one per thread keep each worker's memory flat under the I/O thread pool
        # (glibc reads this when the worker process starts). This process then becomes a fresh
        # interpreter that only supervises the workers (same pid, same sockets to come): having
        # imported the application for the start-up work above, it would otherwise keep about
        # 25 MiB it never uses again for the server's whole life.
        os.environ.update(to_environ(config))
        os.environ.setdefault("MALLOC_ARENA_MAX", "2")
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "onshore.cli.supervise"])
    from onshore.service.collector import tune_collector
    from onshore.service.heap import start_trimming

    app = build(config).asgi()
    apply_connection_limits(config)
    start_trimming()
    tune_collector()
    return serve(config, app)


def serve(config: Config, app: object) -> int:
    """Listen on the configured ports and serve ``app`` until SIGTERM/SIGINT: in this process,
    or, with ``config.processes`` above one, through that many worker processes, each built
    from the ``ONSHORE_*`` environment by ``app`` (an application factory's import path)."""
    import uvicorn

    from onshore.s3api.protocol import S3HttpProtocol

    processes = config.processes
    settings = uvicorn.Config(
        app,  # type: ignore[arg-type]
        factory=processes > 1,
        workers=processes if processes > 1 else None,
        proxy_headers=False,
        host=config.host,
        port=config.port,
        loop="uvloop",
        http=S3HttpProtocol,
        lifespan="on",
        access_log=False,
        server_header=False,
        log_config=None,
        log_level=config.log_level,
        timeout_keep_alive=max(1, int(config.idle_timeout)),
        limit_concurrency=config.max_connections,
        timeout_graceful_shutdown=max(1, int(config.shutdown_timeout)),
        backlog=4096,
        ssl_certfile=str(tls[0]) if (tls := config.tls_files) else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    spread: list[socket.socket] = []
    if processes > 1:
        from onshore.cli.supervisor import spread_sockets

        try:
            spread = spread_sockets(config.host, config.port, processes, settings.backlog)
        except OSError as exc:
            print(f"onshore: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
            raise SystemExit(3) from None
    sockets = [] if spread else [settings.bind_socket()]
    admin = config.admin_host_port
    if admin is not None:
        sockets.append(_bind(*admin))
    kms = config.kms_host_port
    if kms is not None:
        sockets.append(_bind(*kms))
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal to the
    # handler that was installed before it started; make that a no-op so a clean shutdown
    # exits with status 0 instead of dying by the signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    if processes > 1:
        from onshore.cli.supervisor import Supervisor

        Supervisor(settings, sockets=sockets, spread=spread).run()
    else:
        uvicorn.Server(settings).run(sockets=sockets)
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket for the admin API, bound like uvicorn binds the S3 one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        print(f"onshore: cannot listen on the admin address {host}:{port}: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    sock.set_inheritable(True)
    return sock
