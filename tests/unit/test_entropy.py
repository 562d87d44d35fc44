"""Random bytes from per-thread pools: fresh, never handed out twice, not shared with a fork."""

from __future__ import annotations

import os
import threading

from onshore.domain import entropy


def test_lengths_and_no_repeats_across_refills() -> None:
    draws = [entropy.random_bytes(32) for _ in range(3 * entropy.POOL_BYTES // 32)]
    assert all(len(d) == 32 for d in draws)
    assert len(set(draws)) == len(draws)  # 3 pools' worth, every slice different
    assert len(entropy.random_bytes(entropy.POOL_BYTES)) == entropy.POOL_BYTES  # big: direct
    assert len(entropy.random_hex(16)) == 32 and int(entropy.random_hex(16), 16) >= 0


def test_threads_draw_different_bytes() -> None:
    seen: list[bytes] = []

    def draw() -> None:
        seen.append(entropy.random_bytes(16))

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 8


def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    entropy.random_bytes(8)  # the parent's pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next draw must not be the parent's next draw
        os.write(write, entropy.random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 32 and child != entropy.random_bytes(32)
