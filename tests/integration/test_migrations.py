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


def test_a_stored_group_address_becomes_the_group_answer_of_step_1(app):
    from sqlalchemy import text

    rows = {  # institution: (method, security group address)
        "with-group": ("application", "staff@x.edu"),
        "all-calendars": ("application", None),
        "delegated": ("delegated", None),
    }
    with app.app_context():
        downgrade(revision="7c3e9a41d2f5")
        with db.engine.begin() as connection:
            for n, (slug, (method, group)) in enumerate(rows.items(), start=100):
                connection.execute(
                    text(
                        "INSERT INTO institution (id, name, slug, hosting, contact_email, "
                        "created_at) VALUES (:id, :slug, :slug, 'managed', 'a@x.edu', "
                        "CURRENT_TIMESTAMP)"
                    ),
                    {"id": n, "slug": slug},
                )
                connection.execute(
                    text(
                        "INSERT INTO configuration (institution_id, method, cloud, "
                        "security_group_email, group_scope_method, outlook_categories, status, "
                        "step_reached, created_at, updated_at) VALUES (:id, :method, "
                        "'worldwide', :group, 'rbac', false, 'approved', 6, CURRENT_TIMESTAMP, "
                        "CURRENT_TIMESTAMP)"
                    ),
                    {"id": n, "method": method, "group": group},
                )
                # Rows that refer to the configuration: a migration that recreated its table
                # could not drop the old one under them (SQLite enforces foreign keys here).
                connection.execute(
                    text(
                        "INSERT INTO verification (configuration_id, run_id, purpose, kind, "
                        "outcome, message, evidence, created_at) SELECT id, 'r', "
                        "'configuration', 'tenant_found', 'passed', '', '', CURRENT_TIMESTAMP "
                        "FROM configuration WHERE institution_id = :id"
                    ),
                    {"id": n},
                )
        upgrade()
        with db.engine.connect() as connection:
            scopes = dict(
                connection.execute(
                    text(
                        "SELECT institution.slug, configuration.mailbox_scope FROM configuration "
                        "JOIN institution ON institution.id = configuration.institution_id"
                    )
                ).all()
            )
    assert scopes == {"with-group": "group", "all-calendars": "all", "delegated": None}
    with app.app_context():  # and back, with those rows in place, and up again
        downgrade(revision="7c3e9a41d2f5")
        upgrade()
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM verification")).scalar() == 3
