from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from establishments.demo import demo_code


class Command(BaseCommand):
    help = "Print the current two-factor code of the demo staff accounts (DEBUG only)."

    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEBUG:
            raise CommandError("Demo codes exist only in a DEBUG (demonstration) setup.")
        self.stdout.write(demo_code())
