"""Command-line tools: `flask --app wsgi staff ...`, `demo seed`, `ledger keygen`, `audit`."""
from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.config import ConfigError
from app.errors import DomainError
from app.ledger.keygen import keygen_command

staff_cli = AppGroup("staff", help="Manage staff accounts.")
demo_cli = AppGroup("demo", help="Demo data for trying the service.")
ledger_cli = AppGroup("ledger", help="The public ledger's signing key.")
ledger_cli.add_command(keygen_command)  # needs no app context, nor any setting
pii_cli = AppGroup("pii", help="Personal data at rest.")
partner_cli = AppGroup("partner-client", help="Partner systems (OAuth 2.0 clients).")
signals_cli = AppGroup("signals", help="Signals from partner departments.")


@pii_cli.command("reencrypt")
def pii_reencrypt_command():
    """After rotating DATA_ENCRYPTION_KEY (old key moved to DATA_ENCRYPTION_OLD_KEYS): rewrite
    every identity field under the current key. Safe to rerun; then drop the old key."""
    from app.beneficiaries.service import reencrypt_identities

    click.echo(f"re-encrypted {reencrypt_identities()} identity fields under the current key")


def _fail(exc: DomainError) -> None:
    click.echo(f"error: {exc.detail}", err=True)
    if exc.errors:
        for field, messages in exc.errors.items():
            click.echo(f"  {field}: {messages}", err=True)
    sys.exit(1)


@staff_cli.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["caseworker", "moderator", "admin"]))
@click.option("--region", "regions", multiple=True, help="Region code (repeatable).")
@click.option("--display-name", default=None)
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password from the first line of standard input.")
def create_staff_command(username, role, regions, display_name, password_stdin):
    """Create a staff account, non-interactively."""
    from app.auth.service import create_staff

    password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = create_staff(username, role, password, regions, display_name)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created {user.role} {user.username} ({user.id})"
               + (f" regions {','.join(user.region_codes)}" if user.region_codes else ""))


def _set_active(username: str, active: bool) -> None:
    from sqlalchemy import select

    from app.auth.models import STAFF_ROLES, User
    from app.auth.service import update_staff
    from app.extensions import db

    user = db.session.execute(select(User).where(
        User.username == username, User.role.in_(STAFF_ROLES))).scalar_one_or_none()
    if user is None:
        click.echo(f"error: no staff account {username}", err=True)
        sys.exit(1)
    try:
        update_staff(user.id, active=active)
    except DomainError as exc:  # e.g. 409 last_admin
        _fail(exc)
    click.echo(f"{'enabled' if active else 'disabled'} {username}")


@staff_cli.command("disable")
@click.argument("username")
def disable_staff_command(username):
    """Disable a staff account; its tokens stop working at once. The last active admin stays."""
    _set_active(username, False)


@staff_cli.command("enable")
@click.argument("username")
def enable_staff_command(username):
    """Enable a disabled staff account again (it logs in with its old password)."""
    _set_active(username, True)


@demo_cli.command("seed")
def seed_command():
    """Load a small realistic data set of 泉港区 (idempotent: refuses a second seed)."""
    from app.demo import seed

    try:
        summary = seed()
    except DomainError as exc:
        _fail(exc)
    for line in summary:
        click.echo(line)


@click.command("audit")
@with_appcontext
def audit_command():
    """Check every invariant the service promises; exit 1 on any breach (read only)."""
    from app.audit import run_audit

    report = run_audit()
    click.echo(report.text())
    sys.exit(0 if report.ok else 1)


@partner_cli.command("create")
@click.argument("name")
@click.option("--department", required=True,
              help="medical_insurance, disabled_federation, public_security, human_resources, "
                   "housing, education or grid.")
@click.option("--region", default=None, help="Region code the client is limited to "
                                             "(default: everywhere).")
def create_partner_command(name, department, region):
    """Create a partner client; prints its client_id and client_secret, the secret only now."""
    from app.partners.service import create_client

    try:
        client, secret = create_client(name, department, region)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created partner client {client.name} ({client.department}, "
               f"region {client.region_code or 'all'})")
    click.echo(f"client_id: {client.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only once and is not stored: keep it now.", err=True)


@partner_cli.command("disable")
@click.argument("client_id")
def disable_partner_command(client_id):
    """Disable a partner client: no new tokens, and its current tokens stop working at once."""
    from app.partners.service import set_client_active

    try:
        set_client_active(client_id, False)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"disabled {client_id}")


@partner_cli.command("list")
def list_partners_command():
    """List partner clients: client_id, name, department, region, active, secret version (never
    a secret: only its hash is stored)."""
    from app.partners.service import list_clients

    clients = list_clients()
    for c in clients:
        click.echo(f"{c.client_id}\t{c.name}\t{c.department}\tregion {c.region_code or 'all'}\t"
                   f"{'active' if c.active else 'disabled'}\tsecret v{c.secret_version}\t"
                   f"created {c.created_at:%Y-%m-%d}")
    click.echo(f"{len(clients)} partner client(s)", err=True)


@partner_cli.command("rotate-secret")
@click.argument("client_id")
def rotate_partner_secret_command(client_id):
    """Give a partner client a new secret, printed once; the old secret and every token got
    with it stop working at once."""
    from app.partners.service import rotate_secret

    try:
        client, secret = rotate_secret(client_id)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"new secret for {client.client_id} ({client.name}); the old one no longer works")
    click.echo(f"client_secret: {secret}")
    click.echo("The secret is shown only once and is not stored: keep it now.", err=True)


@signals_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--department", required=True, help="The department the file comes from.")
@click.option("--region", default=None, help="Region code the department's file is limited to.")
@click.option("--dry-run", is_flag=True, help="Check every line and report; write nothing.")
def import_signals_command(file, department, region, dry_run):
    """Import a department's monthly CSV of signals (columns: README, "Partner systems")."""
    from app.cases.signals import DEPARTMENTS, SignalSource, ingest_signals
    from app.partners.csv_import import UnreadableFile, count_rows, import_signals
    from app.regions import is_region_code

    if department not in DEPARTMENTS:
        click.echo(f"error: --department must be one of {', '.join(DEPARTMENTS)}", err=True)
        sys.exit(2)
    if region is not None and not is_region_code(region):
        click.echo("error: --region must be a region code of 6, 9 or 12 digits", err=True)
        sys.exit(2)
    try:
        with open(file, "rb") as handle:
            raw = handle.read()
        total = count_rows(raw)
    except (OSError, UnreadableFile) as exc:
        click.echo(f"error: cannot read {file}: {exc}", err=True)
        sys.exit(1)
    source = SignalSource(client_id=f"import:{department}", department=department,
                          region_code=region)
    with click.progressbar(length=total, label="signals", file=sys.stderr) as bar:
        report = import_signals(raw, source, ingest_signals, dry_run=dry_run,
                                on_batch=bar.update)
    click.echo(report.text())


def settings_free_app(error: ConfigError) -> Flask:
    """The app the flask CLI gets when the settings do not load (e.g. APP_ENV=production with
    nothing else set): commands that need no setting still run, every other one stops with the
    configuration error.

    The flask CLI imports `wsgi` (and so builds the whole app) before it even looks up the
    command, and a production app refuses to be built without LEDGER_KEY_FILE, which is the
    very file `ledger keygen` makes. Only the CLI gets this app: gunicorn, `flask run` and
    `flask shell` still fail at start (see `create_app`)."""
    app = Flask(__name__)
    app.cli = _SettingsFreeGroup(error)
    return app


class _SettingsFreeGroup(AppGroup):
    def __init__(self, error: ConfigError) -> None:
        super().__init__()
        self.error = error
        ledger = click.Group("ledger", help=ledger_cli.help)
        ledger.add_command(keygen_command)
        self.add_command(ledger)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = super().get_command(ctx, name)
        if found is not None:
            return found
        return click.Command(name, callback=self._refuse, add_help_option=False,
                             context_settings={"ignore_unknown_options": True,
                                               "allow_extra_args": True})

    def _refuse(self) -> None:
        click.echo(f"error: {self.error}", err=True)
        sys.exit(1)


def register_cli(app: Flask) -> None:
    app.cli.add_command(audit_command)
    app.cli.add_command(staff_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(pii_cli)
    app.cli.add_command(partner_cli)
    app.cli.add_command(signals_cli)
