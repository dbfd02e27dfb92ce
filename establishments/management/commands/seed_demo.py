from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from establishments.demo import DEMO_REFUSED_MESSAGE, DEMO_TOTP_SECRET, seed_demo


class Command(BaseCommand):
    help = (
        "Create (or refresh) demo data and accounts (DEBUG only: the passwords and the "
        "two-factor secret are public). Safe to run again: nothing is duplicated."
    )

    def handle(self, *args: object, **options: object) -> None:
        if not settings.DEBUG:
            # Before anything is written: a production database must never get accounts
            # whose password and two-factor secret are printed in the README.
            raise CommandError(DEMO_REFUSED_MESSAGE)
        result = seed_demo()
        self.stdout.write(self.style.SUCCESS(f"Demo establishment: {result.establishment.name}"))
        self.stdout.write("Demo accounts (sign in at /accounts/login/, staff admin at /admin/):")
        width = max(len(account.email) for account in result.accounts)
        for account in result.accounts:
            self.stdout.write(
                f"  {account.email.ljust(width)}  {account.password}  {account.description}"
            )
        self.stdout.write(
            "Staff accounts use two-factor authentication: add the secret "
            f"{DEMO_TOTP_SECRET} to an authenticator app, or run "
            "`.venv/bin/python manage.py demo_code` for the current code."
        )
