"""The inbound email parser on a dataset folder (``manage.py eval_email``): parse every ``.eml`` under
it (recursively) and compare with the folder's ``manifest.csv`` reference (Python's stdlib parse:
top-level type, attachment count and names, decoded subject and sender).

No database is touched. Files larger than ``EMAIL_MAX_MESSAGE_BYTES`` are counted as refused (the
inbound endpoint answers 413 for them), not parsed.
"""

from __future__ import annotations

import resource
import statistics
import time
import tracemalloc
from pathlib import Path

from django.conf import settings

from supportflow.evaluation import DatasetError, read_csv
from tickets.email import attachments, parse

FIELDS = {
    "top_type": "stdlib_top_content_type",
    "n_attachments": "stdlib_n_attachments",
    "attachment_names": "stdlib_attachment_names",
    "subject": "stdlib_subject",
    "from": "stdlib_from",
}
CUT_AT = (200, 300)


def _norm(value: str) -> str:
    return " ".join(str(value).split())


def run(folder: Path) -> tuple[dict, list[str]]:
    """(figures, one line per disagreement with the manifest or parse exception)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder.")
    manifest = {}
    if (folder / "manifest.csv").exists():
        manifest = {row["file"]: row for row in read_csv(folder / "manifest.csv")}
    files = sorted(folder.rglob("*.eml"))
    times, cpu_times, peaks = [], [], []
    agree = dict.fromkeys(FIELDS, 0)
    compared = exceptions = refused = automatic = from_html = empty_body = kept = found = 0
    disagreements: list[str] = []
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for path in files:
        name = path.relative_to(folder).as_posix()
        raw = path.read_bytes()
        if len(raw) > settings.EMAIL_MAX_MESSAGE_BYTES:
            refused += 1
            continue
        tracemalloc.start()
        start, cpu_start = time.perf_counter(), time.thread_time()
        try:
            parsed = parse.parse(raw)
        except Exception as exc:
            exceptions += 1
            disagreements.append(f"{name}: EXCEPTION {type(exc).__name__}: {exc}")
            continue
        finally:
            times.append((time.perf_counter() - start) * 1000)
            cpu_times.append((time.thread_time() - cpu_start) * 1000)
            peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
            tracemalloc.stop()
        automatic += parsed.is_automatic
        from_html += parsed.body_from_html
        empty_body += not parsed.reply_text
        found += len(parsed.attachments)
        kept += sum(d.accepted for d in attachments.decide(parsed.attachments))
        ref = manifest.get(name)
        if ref is None:
            continue
        compared += 1
        ours = {
            "top_type": parsed.top_type,
            "n_attachments": str(len(parsed.attachments)),
            "attachment_names": "|".join(a.filename or "<unnamed>" for a in parsed.attachments),
            "subject": parsed.subject,
            "from": parsed.from_display,
        }
        for key, column in FIELDS.items():
            mine, theirs = _norm(ours[key]), _norm(ref.get(column, ""))
            # The manifest cuts long values (200 / 300 characters): a cut reference agrees with its prefix.
            if mine == theirs or (len(ref.get(column, "")) in CUT_AT and mine.startswith(theirs)):
                agree[key] += 1
            else:
                disagreements.append(f"{name}: {key}: ours={ours[key][:120]!r} reference={ref.get(column, '')[:120]!r}")
    figures = {
        "data": str(folder),
        "files": len(files),
        "parsed": len(files) - exceptions - refused,
        "exceptions": exceptions,
        "refused_too_large": refused,
        "compared_with_manifest": compared,
        "agreement": {key: round(value / compared, 4) if compared else None for key, value in agree.items()},
        "agree_counts": agree,
        "automatic_detected": automatic,
        "body_from_html": from_html,
        "empty_body": empty_body,
        "attachments_found": found,
        "attachments_kept": kept,
        "ms_median": round(statistics.median(times), 2) if times else None,
        "ms_max": round(max(times), 2) if times else None,
        # CPU time of the parsing thread: the bound to check on a shared machine, where wall time
        # also counts the time spent waiting for a core.
        "cpu_ms_max": round(max(cpu_times), 2) if cpu_times else None,
        "ms_total": round(sum(times), 1),
        "peak_traced_mb_max": round(max(peaks), 2) if peaks else None,
        "rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1),
    }
    return figures, disagreements
