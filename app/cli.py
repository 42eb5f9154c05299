"""Command-line tools: `flask --app wsgi staff ...`, `demo seed`, `ledger keygen`, `audit`."""
from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.errors import DomainError

staff_cli = AppGroup("staff", help="Manage staff accounts.")
demo_cli = AppGroup("demo", help="Demo data for trying the service.")
ledger_cli = AppGroup("ledger", help="The public ledger's signing key.")
pii_cli = AppGroup("pii", help="Personal data at rest.")


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


@staff_cli.command("disable")
@click.argument("username")
def disable_staff_command(username):
    """Disable a staff account; its tokens stop working at once."""
    from sqlalchemy import select

    from app.auth.models import User
    from app.auth.service import update_staff
    from app.extensions import db

    user = db.session.execute(select(User).filter_by(username=username)).scalar_one_or_none()
    if user is None:
        click.echo(f"error: no staff account {username}", err=True)
        sys.exit(1)
    update_staff(user.id, active=False)
    click.echo(f"disabled {username}")


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


@ledger_cli.command("keygen")
@click.option("--name", required=True, help="The log's key name, e.g. weixinyuan.example/ledger.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the private key file (mode 0600; never overwritten).")
def ledger_keygen_command(name, out_path):
    """Write a new Ed25519 signing key for the ledger's checkpoints; print its verifier key."""
    from app.ledger.keys import keygen

    try:
        vkey = keygen(name, out_path)
    except FileExistsError:
        click.echo(f"error: {out_path} exists; a ledger key is never overwritten", err=True)
        sys.exit(1)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {out_path}; set LEDGER_KEY_FILE={out_path}")
    click.echo(f"verifier key (publish it): {vkey}")


@click.command("audit")
@with_appcontext
def audit_command():
    """Check every invariant the service promises; exit 1 on any breach (read only)."""
    from app.audit import run_audit

    report = run_audit()
    click.echo(report.text())
    sys.exit(0 if report.ok else 1)


def register_cli(app: Flask) -> None:
    app.cli.add_command(audit_command)
    app.cli.add_command(staff_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(pii_cli)
