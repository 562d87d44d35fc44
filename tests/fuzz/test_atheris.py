"""Each atheris target (``tests/fuzz/atheris_fuzz.py``) runs briefly in the suite: no crash, no
input slower than 5 s (a hang), no process above 1 GiB (unbounded memory).

``ONSHORE_ATHERIS_SECONDS`` sets the time per target (default 8); a long run is one command, for
example ``ONSHORE_ATHERIS_SECONDS=600 scripts/test tests/fuzz/test_atheris.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris has wheels for Linux x86-64 only")

HARNESS = Path(__file__).with_name("atheris_fuzz.py")
SECONDS = int(os.environ.get("ONSHORE_ATHERIS_SECONDS", "8"))
TARGETS = ["sigv4", "chunked", "range", "xml", "copy_source", "names", "route"]
XML_SEEDS = [
    b"<Delete><Object><Key>a</Key><VersionId>v</VersionId></Object><Quiet>true</Quiet></Delete>",
    b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"e"</ETag></Part>'
    b"</CompleteMultipartUpload>",
    b'<?xml version="1.0" encoding="UTF-8"?><VersioningConfiguration '
    b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status>'
    b"</VersioningConfiguration>",
    b'<!DOCTYPE d [<!ENTITY a "b">]><Delete>&a;</Delete>',
]


@pytest.mark.parametrize("target", TARGETS)
def test_atheris_target(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if target == "xml":
        for n, seed in enumerate(XML_SEEDS):
            (corpus / f"seed{n}").write_bytes(seed)
    run = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            target,
            f"-max_total_time={SECONDS}",
            "-timeout=5",
            "-rss_limit_mb=1024",
            "-max_len=4096",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        cwd=Path(__file__).resolve().parents[2],
    )
    tail = "\n".join(run.stderr.splitlines()[-40:])
    assert run.returncode == 0, f"atheris found a failing input for {target}:\n{tail}"
    assert "Done " in run.stderr, tail
