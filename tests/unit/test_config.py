"""Settings from the environment: defaults on a laptop, no silent secrets in production."""

import pytest

from portal.config import ConfigurationError, from_environment


def test_production_without_secret_key_stops_with_a_clear_message(tmp_path):
    with pytest.raises(ConfigurationError, match="PORTAL_SECRET_KEY is not set"):
        from_environment(str(tmp_path), environ={"PORTAL_ENCRYPTION_KEY": "x"})


def test_production_without_encryption_key_stops_with_a_clear_message(tmp_path):
    with pytest.raises(ConfigurationError, match="PORTAL_ENCRYPTION_KEY is not set"):
        from_environment(str(tmp_path), environ={"PORTAL_SECRET_KEY": "x"})


def test_development_makes_secrets_once_and_keeps_them(tmp_path):
    first = from_environment(str(tmp_path), environ={"PORTAL_ENV": "development"})
    second = from_environment(str(tmp_path), environ={"PORTAL_ENV": "development"})
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["ENCRYPTION_KEYS"] == second["ENCRYPTION_KEYS"]


def test_embedded_default_is_sqlite_in_the_instance_folder(tmp_path):
    config = from_environment(str(tmp_path), environ={"PORTAL_ENV": "development"})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/portal.db"
    assert config["REDIS_URL"] is None


@pytest.mark.parametrize(
    "given",
    ["postgres://portal@db.internal/portal", "postgresql://portal@db.internal/portal"],
)
def test_postgresql_urls_use_the_installed_psycopg_driver(tmp_path, given):
    environ = {"PORTAL_ENV": "development", "PORTAL_DATABASE_URL": given}
    config = from_environment(str(tmp_path), environ=environ)
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://portal@db.internal/portal"


def test_hosts_can_be_pointed_elsewhere(tmp_path):
    config = from_environment(
        str(tmp_path),
        environ={
            "PORTAL_ENV": "development",
            "PORTAL_AUTHORITY_HOST": "https://127.0.0.1:8443",
            "PORTAL_GRAPH_ENDPOINT": "https://127.0.0.1:8444",
        },
    )
    assert config["AUTHORITY_HOST"] == "https://127.0.0.1:8443"
    assert config["GRAPH_ENDPOINT"] == "https://127.0.0.1:8444"


def test_the_sync_window_is_two_weeks_back_and_26_ahead_unless_set(tmp_path):
    config = from_environment(str(tmp_path), environ={"PORTAL_ENV": "development"})
    assert (config["SYNC_DAYS_BACK"], config["SYNC_WEEKS_AHEAD"]) == (14, 26)
    environ = {"PORTAL_ENV": "development", "PORTAL_SYNC_WEEKS_AHEAD": "52"}
    assert from_environment(str(tmp_path), environ=environ)["SYNC_WEEKS_AHEAD"] == 52


@pytest.mark.parametrize(("value", "seconds"), [(None, 900), ("", 900), ("0", 900), ("60", 60)])
def test_a_mailbox_lock_lasts_15_minutes_unless_set(tmp_path, value, seconds):
    environ = {"PORTAL_ENV": "development"}
    if value is not None:
        environ["PORTAL_SYNC_LOCK_SECONDS"] = value
    assert from_environment(str(tmp_path), environ=environ)["SYNC_LOCK_SECONDS"] == seconds


def test_a_sync_window_that_is_not_a_number_stops_with_a_clear_message(tmp_path):
    environ = {"PORTAL_ENV": "development", "PORTAL_SYNC_DAYS_BACK": "two weeks"}
    with pytest.raises(ConfigurationError, match="PORTAL_SYNC_DAYS_BACK must be a whole number"):
        from_environment(str(tmp_path), environ=environ)
