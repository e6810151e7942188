"""The Alembic migrations: they build exactly the models' schema, and they go down and up
again. Runs on SQLite, and on PostgreSQL in the scale-out pass."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from portal.extensions import db


def schema_differences(app) -> list:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return compare_metadata(context, db.metadata)


def test_the_migrations_build_the_schema_the_models_describe(app):
    assert schema_differences(app) == []


def test_the_migrations_go_down_to_nothing_and_up_again(app):
    with app.app_context():
        downgrade(revision="base")
        tables = set(db.inspect(db.engine).get_table_names())
        assert tables <= {"alembic_version"}
        upgrade()
    assert schema_differences(app) == []


def test_links_kept_in_the_outbox_before_are_taken_out(app):
    from sqlalchemy import text

    body = "Add the new certificate:\n\nhttp://portal.example/setup/i/Zm9v-YmFy_0?to=rotation\n\nThanks"
    with app.app_context():
        downgrade(revision="dafe38e3c33a")
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO notification (recipient, subject, body, created_at) "
                    "VALUES ('a@x.edu', 'Rotation', :body, CURRENT_TIMESTAMP)"
                ),
                {"body": body},
            )
        upgrade()
        with db.engine.connect() as connection:
            kept = connection.execute(text("SELECT body FROM notification")).scalar_one()
    assert "Zm9v-YmFy_0" not in kept and "/setup/i/" not in kept
    assert kept.startswith("Add the new certificate:") and kept.endswith("Thanks")
