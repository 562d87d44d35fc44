"""The :class:`~onshore.service.rootkey.KeyWrapper` contract, run over every root key: a key held
in this process (:class:`LocalRootKey`) and one held by a real OpenBao Transit engine
(:class:`TransitRootKey`). Whatever holds the key, a wrapped secret opens only for its own
context, under its own key, byte for byte as it was written."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from onshore.service.rootkey import KeyWrapper, LocalRootKey, UnwrapError, sealed_by
from onshore.service.transit import TransitRootKey, TransitSettings
from tests.openbao import OpenBao

WrapperFactory = Callable[[], KeyWrapper]


@pytest.fixture(params=["local", "transit"])
def new_wrapper(request: pytest.FixtureRequest) -> Iterator[WrapperFactory]:
    """Makes root keys of one kind, each a different key."""
    if request.param == "local":
        yield lambda: LocalRootKey(os.urandom(32))
        return
    bao: OpenBao = request.getfixturevalue("openbao")

    def transit() -> KeyWrapper:
        settings = TransitSettings(bao.address, key=bao.new_key(), token=bao.root_token)
        return TransitRootKey.connect(settings)

    yield transit


def test_round_trip(new_wrapper: WrapperFactory) -> None:
    root = new_wrapper()
    secret = os.urandom(32)
    blob = root.wrap(secret, context=b"tenant key\x00111111111111")
    assert secret not in blob
    assert root.unwrap(blob, context=b"tenant key\x00111111111111") == secret
    assert sealed_by(blob) == root.fingerprint
    assert root.wrap(secret, context=b"c") != root.wrap(secret, context=b"c")  # fresh each time
    assert root.unwrap(root.wrap(b"", context=b"empty"), context=b"empty") == b""


def test_wrong_context_fails(new_wrapper: WrapperFactory) -> None:
    root = new_wrapper()
    blob = root.wrap(b"secret", context=b"access key AKIA1")
    for other in (b"access key AKIA2", b"", b"access key AKIA1\x00"):
        with pytest.raises(UnwrapError):
            root.unwrap(blob, context=other)


def test_blob_from_another_key_fails(new_wrapper: WrapperFactory) -> None:
    first, second = new_wrapper(), new_wrapper()
    assert first.fingerprint != second.fingerprint
    blob = first.wrap(b"secret", context=b"c")
    with pytest.raises(UnwrapError, match="another root key"):
        second.unwrap(blob, context=b"c")


def test_tampered_blob_fails(new_wrapper: WrapperFactory) -> None:
    root = new_wrapper()
    blob = root.wrap(b"secret", context=b"c")
    for position in (0, 1, 8, 9, len(blob) // 2, len(blob) - 2, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(UnwrapError):
            root.unwrap(bytes(tampered), context=b"c")
    for broken in (b"", blob[:1], blob[:9], blob[:-1], blob + b"A", b"\x02" + b"x" * 40):
        with pytest.raises(UnwrapError):
            root.unwrap(broken, context=b"c")


def test_the_other_kinds_blobs_are_refused(new_wrapper: WrapperFactory) -> None:
    root = new_wrapper()
    local = LocalRootKey(os.urandom(32))
    if isinstance(root, LocalRootKey):
        foreign = b"\x02" + bytes(8) + b"vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
    else:
        foreign = local.wrap(b"secret", context=b"c")
    with pytest.raises(UnwrapError):
        root.unwrap(foreign, context=b"c")


def test_repr_shows_no_secret(new_wrapper: WrapperFactory) -> None:
    root = new_wrapper()
    text = repr(root)
    assert root.fingerprint in text
    if isinstance(root, TransitRootKey):
        assert root.settings.token is not None and root.settings.token not in text
        assert root.settings.token not in repr(root.settings)
