"""One check for zip containers (a .zip, or a .docx/.xlsx/… which are zips) before anyone unpacks them:
is it a zip at all, and would it unpack to more than a limit (a zip bomb, judged by the sizes its
directory declares, without unpacking). Used by email attachments and the KB's .docx ingestion, which
word the refusal for their own readers."""

from __future__ import annotations

import io
import zipfile

NOT_A_ZIP = "not_a_zip"
ZIP_BOMB = "zip_bomb"


def zip_problem(data: bytes, *, max_unpacked_bytes: int, max_entries: int) -> str:
    """``NOT_A_ZIP``, ``ZIP_BOMB`` (more entries or declared bytes than allowed), or "" when it is fine."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return NOT_A_ZIP
    if len(entries) > max_entries or sum(entry.file_size for entry in entries) > max_unpacked_bytes:
        return ZIP_BOMB
    return ""
