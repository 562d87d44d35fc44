"""Generate ``docs/s3-compatibility.md``: every S3 operation in botocore's model, and its status.

Inputs, all read from code: the operation names in botocore's S3 service model, onshore's router
(:class:`onshore.s3api.routing.Op`, what it recognizes) and registry
(:data:`onshore.s3api.operations.REGISTRY`, what has a handler). Each operation is

* ``supported``: it has a handler (the note says what part of it, when not all of it);
* ``not implemented``: the router recognizes it and answers 501 ``NotImplemented``;
* ``not recognized``: the router has no name for it. The note then says what the router really
  does with such a request, found by resolving the request botocore would send (its method,
  path and sub-resource, plus required query parameters and headers): it may be taken for
  another operation.

Hand-written notes live in ``NOTES`` below; keep them honest when a handler changes.

Usage: ``python scripts/compat_table.py`` rewrites the file; ``--check`` exits 1 when the file
is out of date (the botocore version line alone may differ). ``tests/unit/test_docs.py`` runs
the check.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]

from onshore.domain.errors import S3Error
from onshore.s3api.operations import load_all
from onshore.s3api.routing import Op, resolve

DOC = Path(__file__).resolve().parent.parent / "docs" / "s3-compatibility.md"
AWS_DOC = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_{}.html"
#: Operations whose AWS page does not follow the ``API_<name>.html`` pattern.
DOC_URLS: Mapping[str, str] = {
    "PostObject": "https://docs.aws.amazon.com/AmazonS3/latest/API/RESTObjectPOST.html",
}
SUPPORTED, NOT_IMPLEMENTED, NOT_RECOGNIZED = "supported", "not implemented", "not recognized"
STATUSES = (SUPPORTED, NOT_IMPLEMENTED, NOT_RECOGNIZED)
SOURCE_PREFIX = "Source: the S3 service model of botocore "

_WRITE_HEADERS = (
    "Server-side encryption: SSE-S3, SSE-KMS (key id, encryption context, S3 Bucket Keys) and "
    "SSE-C, see [encryption.md](encryption.md); `aws:kms:dsse`, `x-amz-tagging` and Object Lock "
    "headers get 501. ACLs are disabled: "
    "`x-amz-acl` other than `private` / `bucket-owner-full-control` and `x-amz-grant-*` get "
    "AccessControlListNotSupported"
)

NOTES: Mapping[str, str] = {
    "CreateBucket": "LocationConstraint must be the served region. "
    "`x-amz-bucket-object-lock-enabled: true` gets 501. `x-amz-object-ownership` (default "
    "BucketOwnerEnforced); with ACLs disabled, ACLs other than owner-only ones get "
    "InvalidBucketAclWithObjectOwnership.",
    "ListBuckets": "`prefix`, `max-buckets`, `continuation-token`. Lists the caller's "
    "account's buckets; `bucket-region` is ignored.",
    "PutBucketPolicy": "The AWS policy language, validated (MalformedPolicy says what is wrong) "
    "and enforced on every request; see [iam.md](iam.md).",
    "GetBucketPolicyStatus": "IsPublic as Block Public Access defines it.",
    "PutPublicAccessBlock": "All four flags are enforced (BlockPublicAcls, IgnorePublicAcls on "
    "buckets whose ownership allows ACLs). The deployment-wide `block_public_access` setting "
    "(default on) adds all four.",
    "GetBucketAcl": "With ACLs disabled (BucketOwnerEnforced, the default) the owner has "
    "FULL_CONTROL; with ACLs enabled the stored ACL. See [iam.md](iam.md).",
    "GetObjectAcl": "As GetBucketAcl, per object version.",
    "PutBucketAcl": "Canned ACLs, `x-amz-grant-*` headers (account ids and the AllUsers, "
    "AuthenticatedUsers, LogDelivery groups; no e-mail grantees) or the XML body, enforced when "
    "the bucket's ownership allows ACLs; with ACLs disabled only owner-only ACLs "
    "(else AccessControlListNotSupported).",
    "PutObjectAcl": "As PutBucketAcl, per object version.",
    "GetBucketOwnershipControls": "OwnershipControlsNotFoundError after "
    "DeleteBucketOwnershipControls.",
    "PutBucketOwnershipControls": "BucketOwnerEnforced, BucketOwnerPreferred, ObjectWriter.",
    "DeleteBucketOwnershipControls": "The bucket then behaves as ObjectWriter, as on AWS.",
    "PutBucketVersioning": "Enabled and Suspended; MFA delete gets 501.",
    "PutObject": "Stores Content-Type, -Encoding, -Disposition, -Language, Cache-Control, "
    "Expires, `x-amz-meta-*` (2 KB), the storage class (a label: every class is stored alike), "
    "Content-MD5, CRC32/CRC32C/CRC64NVME/SHA1/SHA256 checksums, `If-None-Match: *` and "
    f"`If-Match`. {_WRITE_HEADERS}. `x-amz-website-redirect-location` gets 501 too; "
    "`x-amz-write-offset-bytes` is ignored.",
    "GetObject": "One range per request (206/416; a multi-range header gets the whole object, "
    "as from S3), conditional headers (304/412), `response-*` overrides, `partNumber`, "
    "`versionId`, `x-amz-checksum-mode`, SSE-C keys; the SSE and Bucket Key response headers. "
    "No tag count, Object Lock or restore headers.",
    "HeadObject": "As GetObject, without the body.",
    "DeleteObject": "By `versionId`; delete markers under versioning. Conditional deletes "
    "(`If-Match`, `x-amz-if-match-last-modified-time`, `x-amz-if-match-size`) are not checked.",
    "DeleteObjects": "Up to 1,000 keys, Quiet mode, a `VersionId` per key.",
    "CopyObject": "Metadata directive COPY or REPLACE, `x-amz-copy-source-if-*`, source "
    "`versionId`, storage-class change; sources up to 5 GiB. `If-None-Match`/`If-Match` on the "
    "target apply only with REPLACE or a storage-class change. No tagging directive; "
    "`x-amz-checksum-algorithm` is not applied (the source's checksum is kept). "
    f"{_WRITE_HEADERS}.",
    "CreateMultipartUpload": "Checksum algorithm and type (composite or full-object). "
    f"{_WRITE_HEADERS}.",
    "UploadPart": "Content-MD5 and checksums; the upload's SSE-C key on every part.",
    "CompleteMultipartUpload": "`If-None-Match: *` and `If-Match`; composite and full-object "
    "checksums; the upload's encryption (SSE and Bucket Key response headers).",
    "PostObject": "HTML form (browser) uploads; not an operation of botocore's model.",
}

FAMILIES: Mapping[str, str] = {
    "buckets": "Buckets and bucket configuration",
    "objects": "Objects",
    "multipart": "Multipart uploads",
    "listing": "Listing objects",
    "versioning": "Versioning",
    "other": "Other",
}
_MULTIPART = {
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "ListMultipartUploads",
}
_VERSIONING = {"GetBucketVersioning", "PutBucketVersioning", "ListObjectVersions"}
_LISTING = {"ListObjects", "ListObjectsV2"}
_OTHER = {"WriteGetObjectResponse"}
_BUCKET_LEVEL = {
    "ListBuckets",
    "ListDirectoryBuckets",
    "GetObjectLockConfiguration",
    "PutObjectLockConfiguration",
    "GetPublicAccessBlock",
    "PutPublicAccessBlock",
    "DeletePublicAccessBlock",
}


def family(name: str) -> str:
    """The section of the table an operation belongs to (explicit sets, then its name)."""
    for key, members in (
        ("multipart", _MULTIPART),
        ("versioning", _VERSIONING),
        ("listing", _LISTING),
        ("buckets", _BUCKET_LEVEL),
        ("other", _OTHER),
    ):
        if name in members:
            return key
    if "Bucket" in name:
        return "buckets"
    if "Object" in name:
        return "objects"
    return "other"


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    status: str
    note: str


def botocore_operations() -> tuple[str, Mapping[str, Any]]:
    """botocore's version and its S3 operation models, by name."""
    model = botocore.session.get_session().get_service_model("s3")
    return botocore.__version__, {n: model.operation_model(n) for n in model.operation_names}


def template_request(
    operation: Any,
) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """Method, path, query and headers of the request botocore sends for ``operation``, with
    placeholder values: the URI template, plus required query-string and header members."""
    http = operation.http
    path, _, query_string = http["requestUri"].partition("?")
    path = path.replace("{Bucket}", "bucket").replace("{Key+}", "key")
    query = {k: v for k, _, v in (p.partition("=") for p in query_string.split("&") if p)}
    headers = {"host": "localhost:9000"}
    shape = operation.input_shape
    for member_name in shape.required_members if shape is not None else ():
        member = shape.members[member_name]
        location = member.serialization.get("location")
        wire = member.serialization.get("name", member_name)
        if location == "querystring":
            query[wire] = "1"
        elif location == "header":
            headers[wire.lower()] = "source-bucket/source-key"
    return http["method"], path, query, headers


def routed_as(operation: Any) -> str:
    """The ``Op`` the router names for botocore's request, or the S3 error code it raises."""
    method, path, query, headers = template_request(operation)
    try:
        return resolve(method, path, query, headers).op.value
    except S3Error as error:
        return error.code


def rows(operations: Mapping[str, Any], registered: Iterable[str]) -> list[Row]:
    supported = set(registered)
    recognized = {op.value for op in Op}
    out: list[Row] = []
    for name in sorted(set(operations) | recognized):
        note = NOTES.get(name, "")
        if name in supported:
            status = SUPPORTED
        elif name in recognized:
            status = NOT_IMPLEMENTED
        else:
            status = NOT_RECOGNIZED
            target = routed_as(operations[name])
            if target in supported:
                how = f"**taken for `{target}`, which runs** (a router gap)"
            elif target in recognized:
                how = f"answered as `{target}`: 501 NotImplemented"
            else:
                how = f"rejected with `{target}`"
            note = f"Its request is {how}." + (f" {note}" if note else "")
        out.append(Row(name, status, note))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(selected: Sequence[Row]) -> list[str]:
    lines = ["| operation | status | notes |", "| --- | --- | --- |"]
    for row in selected:
        link = f"[{row.name}]({DOC_URLS.get(row.name, AWS_DOC.format(row.name))})"
        lines.append(f"| {link} | {row.status} | {_cell(row.note)} |")
    return lines


def render(version: str, operations: Mapping[str, Any], registered: Iterable[str]) -> str:
    table = rows(operations, registered)
    in_model = [r for r in table if r.name in operations]
    extra = [r for r in table if r.name not in operations]
    counts = Counter(r.status for r in in_model)
    lines = [
        "# S3 compatibility",
        "",
        "<!-- Generated by scripts/compat_table.py: do not edit by hand. -->",
        "",
        f"{SOURCE_PREFIX}{version}, and onshore's router and operation registry.",
        "",
        f"Of the **{len(in_model)}** operations in botocore's S3 model, onshore supports "
        f"**{counts[SUPPORTED]}**, recognizes but does not implement **{counts[NOT_IMPLEMENTED]}** "
        f"and does not recognize **{counts[NOT_RECOGNIZED]}**.",
        "",
        "| status | operations | meaning |",
        "| --- | --- | --- |",
        f"| supported | {counts[SUPPORTED]} | has a handler; the note says what is missing, if "
        "anything |",
        f"| not implemented | {counts[NOT_IMPLEMENTED]} | recognized by the router, answered "
        "with 501 `NotImplemented` (after authentication) |",
        f"| not recognized | {counts[NOT_RECOGNIZED]} | the router has no name for it; the note "
        "says what happens to its request |",
        "",
        "Regenerate with `python scripts/compat_table.py`; `tests/unit/test_docs.py` fails when "
        "this file is out of date.",
    ]
    for key, title in FAMILIES.items():
        section = [r for r in in_model if family(r.name) == key]
        if not section:
            continue
        done = sum(r.status == SUPPORTED for r in section)
        lines += ["", f"## {title} ({done} of {len(section)} supported)", ""]
        lines += _table(section)
    if extra:
        lines += [
            "",
            "## Recognized, but not in botocore's model",
            "",
            *_table(extra),
        ]
    return "\n".join(lines) + "\n"


def generate() -> str:
    version, operations = botocore_operations()
    return render(version, operations, (op.value for op in load_all()))


def _comparable(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(SOURCE_PREFIX)]


def check(path: Path = DOC) -> list[str]:
    """The differences between ``path`` and a fresh table, as diff lines (empty: up to date).
    The botocore version line is not compared, so a newer botocore with the same operations
    passes."""
    current = path.read_text() if path.exists() else ""
    return list(
        difflib.unified_diff(
            _comparable(current), _comparable(generate()), str(path), "generated", lineterm=""
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        diff = check()
        if diff:
            print("\n".join(diff[:80]))
            print(f"{DOC} is out of date: run python scripts/compat_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(generate())
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
