"""The migrations and the models describe the same schema: `flask db check` finds nothing to do
on a database that `flask db upgrade` made (the test database is made exactly that way)."""
from __future__ import annotations


def test_migrations_match_the_models(app):
    from flask_migrate import check

    with app.app_context():
        check()  # Flask-Migrate logs the differences and exits 1 if they part


def test_check_would_catch_a_model_the_migrations_lack(app, capfd):
    """The guard above can fail: a column only the models know is reported."""
    import pytest
    import sqlalchemy as sa
    from flask_migrate import check

    from app.claims.models import Claim

    column = sa.Column("not_in_any_migration", sa.Integer)
    Claim.__table__.append_column(column)
    try:
        with app.app_context(), pytest.raises(SystemExit) as exited:
            check()
    finally:
        Claim.__table__._columns.remove(column)
    assert exited.value.code == 1
    assert "not_in_any_migration" in capfd.readouterr().err  # alembic logs to stderr
