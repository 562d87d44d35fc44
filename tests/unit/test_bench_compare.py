"""benchmarks/compare's pure part: medians over rounds, ratios, the markdown summary, charts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import aggregate  # noqa: E402


def _row(workload: str, op: str, ops_per_s: float, **extra: Any) -> dict[str, Any]:
    row = {
        "workload": workload, "op": op, "ops": 10, "errors": 0, "errors_by_kind": {},
        "ops_per_s": ops_per_s, "mb_per_s": ops_per_s / 10, "items_per_s": None,
        "p50_ms": 1.0, "p99_ms": 2.0, "server_cpu_s_per_1k_ops": 0.5,
        "server_peak_rss_mib": 100.0, "client_cpu_s_per_1k_ops": 0.1,
    }  # fmt: skip
    row.update(extra)
    return row


def _write(raw: Path, name: str, rnd: int, rows: list[dict[str, Any]], **doc: Any) -> None:
    body = {"format": 1, "meta": {"scale": 0.5, "processes": 2, "machine": {"cpus": 2}}}
    body.update(rows=rows, limits={}, problems=[])
    body.update(doc)
    (raw / f"{name}-r{rnd}.json").write_text(json.dumps(body))


def _comparison(tmp_path: Path) -> aggregate.Comparison:
    raw = tmp_path / "raw"
    raw.mkdir()
    for rnd, (mine, theirs) in enumerate([(300.0, 100.0), (500.0, 200.0), (400.0, 150.0)], 1):
        _write(raw, "onshore", rnd, [
            _row("small", "GET", mine, server_peak_rss_mib=100.0 + rnd,
                 server_busiest_share=0.45 + rnd / 10),
            _row("list", "LIST walk", 1.0, items_per_s=mine * 100),
        ])  # fmt: skip
        _write(raw, "seaweedfs", rnd, [
            _row("small", "GET", theirs, errors=1, errors_by_kind={"503": 1}),
            _row("list", "LIST walk", 1.0, items_per_s=theirs * 100),
        ])  # fmt: skip
        _write(
            raw, "limits", rnd, [], limits={"trivial_http_get_per_s": 1000.0, "md5_mb_per_s": 500}
        )
    return aggregate.load(raw, ["onshore", "seaweedfs"])


def test_medians_peaks_and_error_sums(tmp_path: Path) -> None:
    c = _comparison(tmp_path)
    assert c.rounds == 3
    mine = c.get("onshore", ("small", "GET"))
    theirs = c.get("seaweedfs", ("small", "GET"))
    assert mine is not None and theirs is not None
    assert mine.median("ops_per_s") == 400
    assert mine.spread("ops_per_s") == (300, 500)
    assert mine.peak("server_peak_rss_mib") == 103
    assert theirs.errors == 3 and theirs.errors_by_kind == {"503": 3}
    assert c.order == [("small", "GET"), ("list", "LIST walk")]


def test_headline_figures() -> None:
    assert aggregate.headline("small", "PUT") == ("ops_per_s", "ops/s")
    assert aggregate.headline("medium", "GET") == ("mb_per_s", "MB/s")
    assert aggregate.headline("large", "MPU") == ("mb_per_s", "MB/s")
    assert aggregate.headline("list", "LIST walk") == ("items_per_s", "keys/s")
    assert aggregate.headline("list", "PUT (fill)") == ("ops_per_s", "ops/s")


def test_markdown_has_ratios_errors_and_limits(tmp_path: Path) -> None:
    text = aggregate.markdown(_comparison(tmp_path), "title", ["a note"])
    assert "| small | GET | 2.67x |" in text  # 400 / 150
    assert "| list | LIST walk | 2.67x |" in text
    assert '| seaweedfs | small | GET | 3 | {"503": 3} |' in text
    assert "> a note" in text
    assert "- onshore: 40%" in text  # 400 of the trivial responder's 1,000 req/s
    # how the work split between the server's processes, lowest to highest over the rounds
    assert "| small | GET | 0.55–0.75 | – |" in text


def test_ratios_within_each_round(tmp_path: Path) -> None:
    c = _comparison(tmp_path)
    # rounds of 300/100, 500/200, 400/150 ops/s: 3.0, 2.5 and 2.67 within each round
    ratios = aggregate.paired(c, "seaweedfs", [("small", "GET")])
    assert [round(r, 2) for r, _ in ratios] == [3.0, 2.5, 2.67]
    assert [cpu for _, cpu in ratios] == [1.0, 1.0, 1.0]
    text = aggregate.markdown(c, "title")
    assert "| small | GET | 2.67x (2.50–3.00) | 1.00x (1.00–1.00) |" in text


def test_a_workload_counted_whole_weighs_its_operations_by_time(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    # onshore: 10 PUTs in 1 s and 10 GETs in 1 s; the peer: 10 PUTs in 2 s and 10 GETs in 0.5 s
    _write(raw, "onshore", 1, [
        _row("small", "PUT", 10.0, seconds=1.0, server_cpu_s_per_1k_ops=2.0),
        _row("small", "GET", 10.0, seconds=1.0, server_cpu_s_per_1k_ops=1.0),
    ])  # fmt: skip
    _write(raw, "peer", 1, [
        _row("small", "PUT", 5.0, seconds=2.0, server_cpu_s_per_1k_ops=1.0),
        _row("small", "GET", 20.0, seconds=0.5, server_cpu_s_per_1k_ops=1.0),
    ])  # fmt: skip
    c = aggregate.load(raw, ["onshore", "peer"])
    # 20 ops in 2 s against 20 ops in 2.5 s; CPU per op 1.5 against 1.0
    assert aggregate.paired(c, "peer", [("small", "PUT"), ("small", "GET")]) == [(1.25, 1.5)]
    assert "| small | all | 1.25x (1.25–1.25) | 1.50x (1.50–1.50) |" in aggregate.markdown(c, "t")


def test_markdown_without_onshore(tmp_path: Path) -> None:
    c = _comparison(tmp_path)
    c.servers = ["seaweedfs"]
    assert "onshore was not part of this run." in aggregate.markdown(c, "t")


def test_charts_are_pngs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import charts

    written = charts.all_charts(_comparison(tmp_path), tmp_path / "charts")
    assert [p.name for p in written] == ["small.png", "list.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_each_round_rotates_the_order_of_the_servers() -> None:
    import compare  # noqa: PLC0415 - benchmarks/ is on the path only from here

    servers = ["onshore", "onshore-plain", "seaweedfs"]
    orders = [compare.round_order(servers, rnd) for rnd in range(1, 5)]
    assert orders == [
        ["onshore", "onshore-plain", "seaweedfs"],
        ["onshore-plain", "seaweedfs", "onshore"],
        ["seaweedfs", "onshore", "onshore-plain"],
        ["onshore", "onshore-plain", "seaweedfs"],
    ]
    # over as many rounds as servers, each runs once in every position
    assert all(sorted(column) == sorted(servers) for column in zip(*orders[:3], strict=True))
    assert compare.round_order([], 2) == []


def test_cpu_budget_of_a_throughput_target() -> None:
    """budget.py: ops/s = cores in use / (server + client CPU per op), solved for the server's
    share at the target rate."""
    import budget

    # 1.5 cores busy at 5,000 ops/s, 0.05 ms of client CPU per op: 0.25 ms of server CPU per op.
    assert budget.allowed_server_cpu(5000, 0.25, 0.05, 5000) == pytest.approx(0.25)
    # the same cores at 7,500 ops/s leave 0.2 - 0.05 ms per op for the server
    assert budget.allowed_server_cpu(5000, 0.25, 0.05, 7500) == pytest.approx(0.15)
    # a target past what the client alone can drive leaves the server nothing
    assert budget.allowed_server_cpu(5000, 0.25, 0.05, 40000) < 0


_BURN = (
    "import sys, time\n"
    "sys.stdin.readline()\n"
    "end = time.process_time() + float(sys.argv[1])\n"
    "while time.process_time() < end:\n"
    "    pass\n"
    "print('done', flush=True)\n"
    "sys.stdin.readline()\n"
)
_SERVER = (  # an idle parent (the "supervisor") of two CPU burners (the "workers")
    "import subprocess, sys\n"
    "kids = [subprocess.Popen([sys.executable, '-c', sys.argv[1], s], stdin=subprocess.PIPE,\n"
    "        stdout=subprocess.PIPE, text=True) for s in sys.argv[2:]]\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "for k in kids:\n"
    "    k.stdin.write('go\\n'); k.stdin.flush()\n"
    "for k in kids:\n"
    "    k.stdout.readline()\n"
    "print('done', flush=True)\n"
    "sys.stdin.readline()\n"
    "for k in kids:\n"
    "    k.kill(); k.wait()\n"
)


@pytest.mark.parametrize(
    ("seconds", "low", "high"), [((0.3, 0.3), 0.4, 0.65), ((0.5, 0.0), 0.85, 1.0)]
)
def test_the_busiest_process_share_tells_a_split_from_one_process_doing_all(
    seconds: tuple[float, float], low: float, high: float
) -> None:
    """A server process tree whose two workers burn CPU between the monitor's two readings,
    evenly or all in one: the busiest process's share is about a half, or about one."""
    import subprocess

    from onshore.bench.procstat import ServerMonitor, busiest_share

    assert busiest_share({1: 1.0}, {1: 1.0}) is None  # nothing spent
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, _BURN, *(str(s) for s in seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdin is not None and server.stdout is not None
    try:
        assert server.stdout.readline() == "ready\n"  # both workers started, waiting
        monitor = ServerMonitor(server.pid)
        monitor.start()
        server.stdin.write("go\n")
        server.stdin.flush()
        assert server.stdout.readline() == "done\n"
        usage = monitor.stop()
        server.stdin.write("stop\n")
        server.stdin.flush()
        server.wait(timeout=30)
    finally:
        server.kill()
    assert usage.busiest_share is not None
    assert low <= usage.busiest_share <= high, usage
    assert usage.cpu_seconds >= 0.9 * sum(seconds)  # the kernel counts in 10 ms ticks
