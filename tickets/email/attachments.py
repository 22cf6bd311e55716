"""Which email attachments we keep: an extension allow-list checked against the declared type, size
and count limits, and a safe filename. No content sniffing: the file is only ever served as a download
(``Content-Disposition: attachment``, ``nosniff``) with a type derived from its allowed extension.
Zip containers (.zip, .docx, .xlsx…) are the exception: a person opens them, so one that is not a zip
or would unpack to more than ``MAX_UNPACKED_BYTES`` (a zip bomb) is refused."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.conf import settings

from supportflow import archives
from tickets.email.parse import ParsedAttachment

# extension -> the type we serve it as
ALLOWED = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "txt": "text/plain",
    "log": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
    "xml": "application/xml",
    "rtf": "application/rtf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "eml": "message/rfc822",
    "ics": "text/calendar",
    "zip": "application/zip",
    "asc": "text/plain",
    "sig": "application/pgp-signature",
}
# Declared types we refuse whatever the extension says (executables, scripts, active content).
REFUSED_TYPES = re.compile(
    r"^(?:application/(?:x-msdownload|x-msdos-program|x-dosexec|x-executable|x-sh|x-csh|x-bat|x-msi|"
    r"java-archive|x-java-archive|javascript|x-javascript|ecmascript|hta|x-ms-shortcut|vnd\.microsoft\.portable-executable)"
    r"|text/(?:html|javascript|x-script.*|x-sh|vbscript)|image/svg\+xml)$"
)
FROM_TYPE = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "text/plain": "txt",
    "text/csv": "csv",
    "message/rfc822": "eml",
    "text/calendar": "ics",
    "application/pgp-signature": "asc",
}


ZIP_CONTAINERS = frozenset({"zip", "docx", "xlsx", "pptx", "odt", "ods", "odp"})
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_ZIP_ENTRIES = 10_000


def zip_problem(data: bytes) -> str:
    """Why a zip container is refused (not a zip, or a zip bomb by its declared sizes), or ""."""
    problem = archives.zip_problem(data, max_unpacked_bytes=MAX_UNPACKED_BYTES, max_entries=MAX_ZIP_ENTRIES)
    if problem == archives.NOT_A_ZIP:
        return "not a valid archive, though its name says it is one"
    if problem == archives.ZIP_BOMB:
        return f"it would unpack to more than {MAX_UNPACKED_BYTES // 2**20} MB (a zip bomb)"
    return ""


@dataclass
class Decision:
    attachment: ParsedAttachment
    filename: str
    content_type: str
    accepted: bool
    reason: str = ""


def safe_filename(name: str, content_type: str) -> str:
    """A display/download name without paths, control characters or shell-ish surprises."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"<>:|?*;]", "_", name).strip().lstrip(".")
    name = re.sub(r"\s+", " ", name)
    if not name or "." not in name:
        ext = FROM_TYPE.get(content_type, "bin")
        name = f"{name or 'attachment'}.{ext}"
    if len(name) > 150:
        stem, _, ext = name.rpartition(".")
        name = f"{stem[: 149 - len(ext)]}.{ext}"
    return name


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def decide(attachments: list[ParsedAttachment]) -> list[Decision]:
    """Accept or refuse each attachment, in order, under the count / per-file / total limits."""
    max_count = settings.EMAIL_MAX_ATTACHMENTS
    max_each = settings.EMAIL_MAX_ATTACHMENT_BYTES
    max_total = settings.EMAIL_MAX_ATTACHMENTS_TOTAL_BYTES
    out: list[Decision] = []
    kept = total = 0
    for item in attachments:
        filename = safe_filename(item.filename, item.content_type)
        ext = extension(filename)
        served_type = ALLOWED.get(ext, "")
        reason = ""
        if not served_type:
            reason = f"file type .{ext or '?'} is not accepted"
        elif REFUSED_TYPES.match(item.content_type):
            reason = f"declared type {item.content_type} is not accepted"
        elif not item.data:
            reason = "the file is empty"
        elif len(item.data) > max_each:
            reason = f"larger than {max_each:,} bytes"
        elif kept >= max_count:
            reason = f"more than {max_count} attachments"
        elif total + len(item.data) > max_total:
            reason = f"attachments together exceed {max_total:,} bytes"
        elif ext in ZIP_CONTAINERS:
            reason = zip_problem(item.data)
        if reason:
            out.append(Decision(item, filename, served_type or "application/octet-stream", False, reason))
            continue
        kept += 1
        total += len(item.data)
        out.append(Decision(item, filename, served_type, True))
    return out
