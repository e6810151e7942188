"""One value for an app registration: what every identity function is handed."""

import dataclasses

import pytest
from flask import Flask

from portal.microsoft import identity
from portal.microsoft.clouds import cloud
from portal.models import Certificate, Configuration


@pytest.fixture(autouse=True)
def _app_context():
    """``cloud`` reads the host overrides from the application's settings (none here)."""
    with Flask(__name__).app_context():
        yield


def test_a_configuration_gives_its_cloud_tenant_client_id_and_certificate():
    certificate = Certificate(public_pem="pem", sha256_thumbprint="ab")
    configuration = Configuration(
        cloud="usgov", tenant_id="contoso.edu", client_id="c1", certificate=certificate
    )
    app = identity.registration(configuration)
    assert app == identity.AppRegistration(cloud("usgov"), "contoso.edu", "c1", certificate)


def test_a_certificate_under_rotation_replaces_the_configurations_own():
    configuration = Configuration(cloud="worldwide", tenant_id="t", client_id="c")
    new = Certificate(public_pem="new")
    assert identity.registration(configuration, new).certificate is new


def test_an_app_registration_cannot_be_changed_on_the_way():
    app = identity.AppRegistration(cloud("worldwide"), "t", "c", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        app.tenant = "other"  # type: ignore[misc]
