"""Ingest .md, .txt, .html, .pdf and .docx files (and folders of them) into the knowledge base."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from knowledge.ingest import SUPPORTED
from knowledge.models import DEFAULT_NAMESPACE, Article
from knowledge.services import ingest_files


def collect(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)
        elif path.is_file():
            files.append(path)
        else:
            raise CommandError(f"{raw}: no such file or folder.")
    return files


class Command(BaseCommand):
    help = "Ingest knowledge-base files or folders (md, txt, html, pdf, docx); bad files are reported, not fatal."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument(
            "--status",
            default=Article.Status.DRAFT,
            choices=Article.Status.values,
            help="Status of new articles without one in their front matter (default: draft).",
        )
        parser.add_argument("--namespace", default=DEFAULT_NAMESPACE)
        parser.add_argument("--source", default=Article.Source.UPLOAD, choices=Article.Source.values)

    def handle(self, *args, paths, status, namespace, source, **options):
        files = collect(paths)
        if not files:
            raise CommandError("No supported files found (.md, .txt, .html, .pdf, .docx).")
        bar = tqdm(total=len(files), unit="file", disable=options["verbosity"] == 0, file=self.stderr._out)

        def progress(name: str, done: int) -> None:
            bar.set_postfix_str(Path(name).name[:30])
            bar.update(1)

        report = ingest_files(
            ((str(f), f.read_bytes()) for f in files),
            namespace=namespace,
            default_status=status,
            source=source,
            progress=progress,
        )
        bar.close()
        for name, error in report.failed:
            self.stderr.write(
                self.style.ERROR(f"skipped {error}" if error.startswith(name) else f"skipped {name}: {error}")
            )
        self.stdout.write(
            f"{len(report.created)} created, {len(report.updated)} updated, {len(report.failed)} failed; "
            f"{report.embedded} chunk(s) embedded."
        )
