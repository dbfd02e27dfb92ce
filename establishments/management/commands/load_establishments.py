from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from establishments import services

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "data" / "establishments.csv"


class Command(BaseCommand):
    help = (
        "Import the prison estate from a CSV (name, kind, operator, country, rollout_stage; "
        "optionally town and town_cy). "
        "Idempotent: existing establishments are updated, nothing is duplicated. "
        "A bad line stops the import before anything is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file",
            nargs="?",
            default=str(DEFAULT_CSV),
            help="CSV file (default: the estate shipped with the project)",
        )

    def handle(self, *args: object, **options: object) -> None:
        path = Path(str(options["file"]))
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        if path.stat().st_size > services.MAX_IMPORT_BYTES:
            raise CommandError(f"{path}: larger than {services.MAX_IMPORT_BYTES // 1048576} MB.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: not UTF-8 text (byte {exc.start}).") from None
        try:
            rows = services.parse_establishments_csv(text)
            result = services.establishments_import(rows=rows)
        except services.ImportError_ as exc:
            raise CommandError(f"{path}: {exc} Nothing was imported.") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Establishments: {result.created} created, {result.updated} updated, "
                f"{result.unchanged} unchanged."
            )
        )
