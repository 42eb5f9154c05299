"""`python -m app.ledger.keygen --name NAME --out FILE`: make the ledger's signing key.

Needs no setting at all (no database, Redis or secrets), so an operator can make the key before
writing the production configuration that names it in LEDGER_KEY_FILE. `flask --app wsgi ledger
keygen` is this same command (app/cli.py), and runs under an incomplete production configuration
too (see `app.cli.settings_free_app`).
"""
from __future__ import annotations

import sys

import click


@click.command("keygen")
@click.option("--name", required=True, help="The log's key name, e.g. weixinyuan.example/ledger.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the private key file (mode 0600; never overwritten).")
def keygen_command(name: str, out_path: str) -> None:
    """Write a new Ed25519 signing key for the ledger's checkpoints; print its verifier key."""
    from app.ledger.keys import keygen

    try:
        vkey = keygen(name, out_path)
    except FileExistsError:
        click.echo(f"error: {out_path} exists; a ledger key is never overwritten", err=True)
        sys.exit(1)
    except (OSError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {out_path}; set LEDGER_KEY_FILE={out_path}")
    click.echo(f"verifier key (publish it): {vkey}")


if __name__ == "__main__":
    keygen_command(prog_name="python -m app.ledger.keygen")
