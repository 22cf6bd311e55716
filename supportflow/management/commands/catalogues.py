"""``manage.py catalogues``: the translation catalogues' workflow, run by ``make messages`` (docs/i18n.md)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from supportflow import i18n


class Command(BaseCommand):
    help = (
        "Extract the translatable strings into locale/<lang>/LC_MESSAGES/django.po (de, es, fr) and compile "
        "them into the .mo files the app reads. Needs GNU gettext (xgettext, msgmerge, msgfmt)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--compile-only", action="store_true", help="Only compile the .po files into .mo.")

    def handle(self, *args, compile_only: bool = False, **options):
        if not compile_only:
            i18n.catalogues_extract()
        i18n.catalogues_compile()
        self.stdout.write(
            self.style.SUCCESS(f"Catalogues in {settings.LOCALE_PATHS[0]}: {', '.join(i18n.CATALOGUE_LANGUAGES)}.")
        )
