"""Settings from the environment: defaults on a laptop, no silent secrets in production."""

import ipaddress

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


PRODUCTION = {"PORTAL_SECRET_KEY": "x", "PORTAL_ENCRYPTION_KEY": "y"}


def test_production_fetches_feeds_from_no_local_or_private_network_unless_listed(tmp_path):
    assert from_environment(str(tmp_path), environ=PRODUCTION)["FEED_ALLOWED_NETWORKS"] == ()


@pytest.mark.parametrize("unset", [{}, {"PORTAL_FEED_ALLOWED_NETWORKS": ""}])
def test_development_allows_feeds_on_loopback_by_default(tmp_path, unset):
    config = from_environment(str(tmp_path), environ={"PORTAL_ENV": "development", **unset})
    assert config["FEED_ALLOWED_NETWORKS"] == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_feed_allowed_networks_are_comma_separated_cidrs(tmp_path):
    environ = PRODUCTION | {"PORTAL_FEED_ALLOWED_NETWORKS": " 10.20.0.0/16,fd12:3456::/48 ,"}
    assert from_environment(str(tmp_path), environ=environ)["FEED_ALLOWED_NETWORKS"] == (
        ipaddress.ip_network("10.20.0.0/16"),
        ipaddress.ip_network("fd12:3456::/48"),
    )


@pytest.mark.parametrize("entry", ["10.1.2.3/16", "10.0.0.0/33", "intranet", "10.0.0.0/8;"])
def test_a_feed_network_that_is_not_a_cidr_stops_start_up_naming_it(tmp_path, entry):
    environ = PRODUCTION | {"PORTAL_FEED_ALLOWED_NETWORKS": f"192.168.0.0/24, {entry}"}
    with pytest.raises(ConfigurationError, match=f"PORTAL_FEED_ALLOWED_NETWORKS: '{entry}'"):
        from_environment(str(tmp_path), environ=environ)


@pytest.mark.parametrize("value", ["0", "-1", "ten", "nan", "inf"])
def test_a_feed_timeout_that_is_not_a_positive_number_stops_start_up(tmp_path, value):
    with pytest.raises(ConfigurationError, match="PORTAL_FEED_TIMEOUT"):
        from_environment(str(tmp_path), environ=PRODUCTION | {"PORTAL_FEED_TIMEOUT": value})


def test_a_whole_feed_fetch_may_take_ten_seconds_unless_set(tmp_path):
    assert from_environment(str(tmp_path), environ=PRODUCTION)["FEED_TIMEOUT"] == 10
    environ = PRODUCTION | {"PORTAL_FEED_TIMEOUT": "2.5"}
    assert from_environment(str(tmp_path), environ=environ)["FEED_TIMEOUT"] == 2.5


def test_logs_are_json_lines_at_info_in_production_readable_in_development(tmp_path):
    production = from_environment(str(tmp_path), {"SECRET_KEY": "x", "ENCRYPTION_KEYS": "y"}, {})
    development = from_environment(str(tmp_path), {"PORTAL_ENV": "development"}, {})
    assert (production["LOG_FORMAT"], production["LOG_LEVEL"]) == ("json", "INFO")
    assert development["LOG_FORMAT"] == "text"


def test_log_settings_are_read_from_the_environment(tmp_path):
    env = {"PORTAL_ENV": "development", "PORTAL_LOG_LEVEL": "debug", "PORTAL_LOG_FORMAT": "json"}
    config = from_environment(str(tmp_path), environ=env)
    assert (config["LOG_FORMAT"], config["LOG_LEVEL"]) == ("json", "DEBUG")


@pytest.mark.parametrize(
    ("name", "value"), [("PORTAL_LOG_LEVEL", "verbose"), ("PORTAL_LOG_FORMAT", "xml")]
)
def test_an_unknown_log_setting_stops_start_up_naming_it(tmp_path, name, value):
    with pytest.raises(ConfigurationError, match=name):
        from_environment(str(tmp_path), environ={"PORTAL_ENV": "development", name: value})


def test_a_metrics_token_short_enough_to_guess_stops_start_up(tmp_path):
    environ = {"PORTAL_ENV": "development", "PORTAL_METRICS_TOKEN": "x" * 31}
    with pytest.raises(ConfigurationError, match="PORTAL_METRICS_TOKEN must be at least 32"):
        from_environment(str(tmp_path), environ=environ)
    environ["PORTAL_METRICS_TOKEN"] = "x" * 32
    assert from_environment(str(tmp_path), environ=environ)["METRICS_TOKEN"] == "x" * 32
    assert (
        from_environment(str(tmp_path), environ={"PORTAL_ENV": "development"})["METRICS_TOKEN"]
        is None
    )


def test_a_missing_metrics_directory_stops_start_up(tmp_path):
    environ = {"PORTAL_ENV": "development", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "none")}
    with pytest.raises(ConfigurationError, match="PROMETHEUS_MULTIPROC_DIR"):
        from_environment(str(tmp_path), environ=environ)
    environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    from_environment(str(tmp_path), environ=environ)


@pytest.mark.parametrize(
    ("value", "sizes"),
    [
        (None, {0: 20, 100: 20, 250: 25, 1000: 100}),  # 10 % of the group, at least 20
        ("5%", {100: 20, 1000: 50}),
        ("12.5 %", {1000: 125}),
        ("50", {10: 50, 10_000: 50}),  # a whole number: that many, whatever the group
        ("0", {1000: 0}),  # every removal waits for a person
    ],
)
def test_group_following_removal_limit(tmp_path, value, sizes):
    environ = {"PORTAL_ENV": "development"}
    if value is not None:
        environ["PORTAL_GROUP_FOLLOW_MAX_REMOVALS"] = value
    limit = from_environment(str(tmp_path), environ=environ)["GROUP_FOLLOW_MAX_REMOVALS"]
    assert {size: limit.of(size) for size in sizes} == sizes


@pytest.mark.parametrize("value", ["ten", "-5", "150%", "5.5", "%"])
def test_a_removal_limit_that_is_neither_a_percentage_nor_a_number_stops_start_up(tmp_path, value):
    environ = {"PORTAL_ENV": "development", "PORTAL_GROUP_FOLLOW_MAX_REMOVALS": value}
    with pytest.raises(ConfigurationError, match="PORTAL_GROUP_FOLLOW_MAX_REMOVALS"):
        from_environment(str(tmp_path), environ=environ)


def test_group_following_runs_hourly_unless_told_otherwise(tmp_path):
    default = from_environment(str(tmp_path), environ={"PORTAL_ENV": "development"})
    assert default["GROUP_FOLLOW_MINUTES"] == 60
    environ = {"PORTAL_ENV": "development", "PORTAL_GROUP_FOLLOW_MINUTES": "15"}
    assert from_environment(str(tmp_path), environ=environ)["GROUP_FOLLOW_MINUTES"] == 15
