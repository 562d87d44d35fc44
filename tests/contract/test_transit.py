""":class:`TransitRootKey` against a real OpenBao: what the operator does at the key service
(rotate, retire old versions, delete the key, revoke the token, stop the server) and what
onshore makes of it; start-up checks that fail with one clear line; TLS, token files,
namespaces, timeouts."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from onshore.service.rootkey import (
    KeyServiceUnavailable,
    LocalRootKey,
    RootKeyError,
    UnwrapError,
    sealed_by,
)
from onshore.service.transit import TransitRootKey, TransitSettings
from tests.api.server import free_port
from tests.openbao import OpenBao, start


def settings(bao: OpenBao, key: str | None = None, **changes: object) -> TransitSettings:
    base = TransitSettings(
        bao.address, key=key or bao.new_key(), token=bao.root_token, cache_seconds=0
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# --- start-up checks ----------------------------------------------------------------------------


def test_least_privilege_token_is_enough(openbao: OpenBao) -> None:
    key = openbao.new_key()
    root = TransitRootKey.connect(settings(openbao, key, token=openbao.token_for(key)))
    assert root.unwrap(root.wrap(b"s", context=b"c"), context=b"c") == b"s"


def test_connect_refuses_with_a_clear_reason(openbao: OpenBao) -> None:
    key = openbao.new_key()
    cases: list[tuple[TransitSettings, str]] = [
        (settings(openbao, key, token="not-a-token"), "permission denied"),
        (settings(openbao, key, token=openbao.token_for(openbao.new_key())), "permission denied"),
        (settings(openbao, "no-such-key"), "does not exist"),
        (settings(openbao, key, mount="nowhere"), "no Transit secrets engine"),
        (settings(openbao, key, address=f"http://127.0.0.1:{free_port()}"), "Connection refused"),
        (settings(openbao, key, address="http://vault.example:8200"), "use https"),
        (settings(openbao, key, address="ftp://127.0.0.1:1"), "https://HOST"),
        (settings(openbao, key, address="https://127.0.0.1:8200/v1/transit"), "https://HOST"),
        (settings(openbao, key, token=None), "no token"),
        (settings(openbao, key, token="hunter2\nX-Other: 1"), "does not hold a token"),
        (settings(openbao, key, namespace="ns\r\nX-Other: 1"), "cannot be sent in a header"),
    ]
    for bad, message in cases:
        started = time.monotonic()
        with pytest.raises(RootKeyError, match=message) as caught:
            TransitRootKey.connect(bad)
        assert time.monotonic() - started < 5
        assert "\n" not in str(caught.value)
        assert "not-a-token" not in str(caught.value) and "hunter2" not in str(caught.value)


def test_keys_that_cannot_bind_a_context_are_refused(openbao: OpenBao) -> None:
    for kind, params, message in (
        ("aes256-gcm96", {"derived": True}, "derived"),
        ("rsa-2048", {}, "type rsa-2048"),
        ("ed25519", {}, "type ed25519"),
    ):
        key = openbao.new_key(kind, **params)
        with pytest.raises(RootKeyError, match=message):
            TransitRootKey.connect(settings(openbao, key))
    for kind in ("aes128-gcm96", "chacha20-poly1305"):
        root = TransitRootKey.connect(settings(openbao, openbao.new_key(kind)))
        with pytest.raises(UnwrapError):
            root.unwrap(root.wrap(b"s", context=b"a"), context=b"b")


# --- what the operator does at the key service --------------------------------------------------


def test_key_rotation_at_the_service(openbao: OpenBao) -> None:
    key = openbao.new_key()
    root = TransitRootKey.connect(settings(openbao, key))
    old_blob = root.wrap(b"old", context=b"c")
    first = root.fingerprint
    assert openbao.rotate_key(key) == 2
    new_blob = root.wrap(b"new", context=b"c")  # the running wrapper follows the new version
    assert sealed_by(new_blob) == root.fingerprint != first == sealed_by(old_blob)
    assert root.unwrap(old_blob, context=b"c") == b"old"  # old versions still decrypt
    reconnected = TransitRootKey.connect(settings(openbao, key))
    assert reconnected.fingerprint == root.fingerprint  # the same identity, wherever it runs
    assert reconnected.unwrap(new_blob, context=b"c") == b"new"
    openbao.min_decryption_version(key, 2)  # the operator retires version 1
    with pytest.raises(UnwrapError, match="disallowed"):
        reconnected.unwrap(old_blob, context=b"c")
    assert reconnected.unwrap(new_blob, context=b"c") == b"new"


def test_a_blob_forged_for_another_version_fails(openbao: OpenBao) -> None:
    key = openbao.new_key()
    root = TransitRootKey.connect(settings(openbao, key))
    blob = root.wrap(b"s", context=b"c")
    openbao.rotate_key(key)
    forged = blob[:1] + root.version_fingerprint(2) + blob[9:].replace(b"vault:v1:", b"vault:v2:")
    with pytest.raises(UnwrapError):
        root.unwrap(forged, context=b"c")


def test_deleted_key_shreds_what_it_wrapped(openbao: OpenBao) -> None:
    key = openbao.new_key()
    openbao.rotate_key(key)
    root = TransitRootKey.connect(settings(openbao, key))
    blob = root.wrap(b"tenant key", context=b"c")
    openbao.delete_key(key)
    with pytest.raises(UnwrapError, match="refused to decrypt"):
        root.unwrap(blob, context=b"c")
    with pytest.raises(RootKeyError, match="does not exist"):
        TransitRootKey.connect(settings(openbao, key))
    # A new key under the same name (version 1 again) seals new secrets; the old stay shredded.
    openbao.ok("POST", f"transit/keys/{key}", {"type": "aes256-gcm96"})
    fresh = root.wrap(b"new", context=b"c")
    assert sealed_by(fresh) == root.version_fingerprint(1).hex() == root.fingerprint
    assert root.unwrap(fresh, context=b"c") == b"new"
    with pytest.raises(UnwrapError):
        root.unwrap(blob, context=b"c")


def test_revoked_token_is_unavailable_not_corrupt(openbao: OpenBao) -> None:
    key = openbao.new_key()
    token = openbao.token_for(key)
    root = TransitRootKey.connect(settings(openbao, key, token=token))
    blob = root.wrap(b"s", context=b"c")
    openbao.revoke(token)
    with pytest.raises(KeyServiceUnavailable, match="permission denied") as caught:
        root.unwrap(blob, context=b"c")
    assert token not in str(caught.value)
    with pytest.raises(KeyServiceUnavailable, match="permission denied"):
        root.wrap(b"s", context=b"c")


def test_unwraps_are_cached_for_cache_seconds(openbao: OpenBao) -> None:
    key = openbao.new_key()
    token = openbao.token_for(key)
    cached = TransitRootKey.connect(settings(openbao, key, token=token, cache_seconds=60))
    uncached = TransitRootKey.connect(settings(openbao, key, token=token))
    blob = cached.wrap(b"s", context=b"c")
    assert cached.unwrap(blob, context=b"c") == b"s"
    with pytest.raises(UnwrapError):
        cached.unwrap(blob, context=b"d")  # the context is part of the cache key
    openbao.revoke(token)
    assert cached.unwrap(blob, context=b"c") == b"s"  # no call: from the cache
    with pytest.raises(KeyServiceUnavailable):
        uncached.unwrap(blob, context=b"c")
    cached.forget_cached()
    with pytest.raises(KeyServiceUnavailable):
        cached.unwrap(blob, context=b"c")


# --- the service going away ---------------------------------------------------------------------


def test_service_down_then_back(tmp_path: Path) -> None:
    bao = start(tmp_path / "bao")
    try:
        root = TransitRootKey.connect(settings(bao))
        blob = root.wrap(b"s", context=b"c")
        bao.stop()
        with pytest.raises(KeyServiceUnavailable, match="cannot be reached"):
            root.unwrap(blob, context=b"c")
    finally:
        bao.stop()


def test_a_service_that_never_answers_times_out_then_fails_fast(openbao: OpenBao) -> None:
    root = TransitRootKey.connect(settings(openbao, cache_seconds=0))
    blob = root.wrap(b"s", context=b"c")
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        stuck = TransitRootKey(
            replace(root.settings, address=address, timeout=0.5), latest_version=1
        )
        started = time.monotonic()
        with pytest.raises(KeyServiceUnavailable, match="timed out"):
            stuck.unwrap(blob, context=b"c")
        assert 0.4 < time.monotonic() - started < 3
        started = time.monotonic()
        with pytest.raises(KeyServiceUnavailable, match="timed out"):
            stuck.wrap(b"s", context=b"c")  # within the back-off: no second wait
        assert time.monotonic() - started < 0.2


# --- TLS, token files, namespaces ---------------------------------------------------------------


@pytest.fixture(scope="module")
def bao_tls(tmp_path_factory: pytest.TempPathFactory, openbao: OpenBao) -> Iterator[OpenBao]:
    bao = start(tmp_path_factory.mktemp("bao-tls"), tls=True)
    yield bao
    bao.stop()


def test_tls_with_the_operator_ca(bao_tls: OpenBao) -> None:
    assert bao_tls.address.startswith("https://") and bao_tls.ca_file is not None
    key = bao_tls.new_key()
    root = TransitRootKey.connect(settings(bao_tls, key, ca_file=str(bao_tls.ca_file)))
    assert root.unwrap(root.wrap(b"s", context=b"c"), context=b"c") == b"s"
    with pytest.raises(KeyServiceUnavailable, match="certificate not trusted"):
        TransitRootKey.connect(settings(bao_tls, key))  # the system CAs do not know it
    with pytest.raises(RootKeyError, match="transit_ca_file"):
        TransitRootKey.connect(settings(bao_tls, key, ca_file=str(bao_tls.home / "bao.log")))


def test_token_file_mode_checked_and_read_on_every_call(openbao: OpenBao, tmp_path: Path) -> None:
    key = openbao.new_key()
    first, second = openbao.token_for(key), openbao.token_for(key)
    path = tmp_path / "token"
    path.write_text(first + "\n")
    path.chmod(0o644)
    with pytest.raises(RootKeyError, match="chmod 600"):
        TransitRootKey.connect(settings(openbao, key, token=None, token_file=str(path)))
    path.chmod(0o600)
    root = TransitRootKey.connect(settings(openbao, key, token=None, token_file=str(path)))
    blob = root.wrap(b"s", context=b"c")
    openbao.revoke(first)
    path.write_text(second)  # as an agent renewing the token would
    assert root.unwrap(blob, context=b"c") == b"s"
    os.unlink(path)
    with pytest.raises(KeyServiceUnavailable, match="transit_token_file"):
        root.unwrap(blob, context=b"c")


def test_namespace_is_part_of_the_key_identity(openbao: OpenBao) -> None:
    namespace = f"ns{os.urandom(4).hex()}"
    openbao.ok("POST", f"sys/namespaces/{namespace}")
    status, _ = openbao.call("POST", f"{namespace}/sys/mounts/transit", {"type": "transit"})
    assert status == 204
    key = openbao.new_key()
    openbao.ok("POST", f"{namespace}/transit/keys/{key}", {"type": "aes256-gcm96"})
    outside = TransitRootKey.connect(settings(openbao, key))
    inside = TransitRootKey.connect(settings(openbao, key, namespace=namespace))
    assert inside.fingerprint != outside.fingerprint
    blob = inside.wrap(b"s", context=b"c")
    assert inside.unwrap(blob, context=b"c") == b"s"
    with pytest.raises(UnwrapError, match="another root key"):
        outside.unwrap(blob, context=b"c")
    local = LocalRootKey(os.urandom(32))
    with pytest.raises(UnwrapError):
        local.unwrap(blob, context=b"c")
