"""Helpers for the stand-ins' self-test: an app's certificate credential, a requests
session that trusts the test CA, a browser stand-in that walks Entra's pages, and a plain
Graph client with a token signed as the identity stand-in signs them."""

import base64
import datetime
import secrets
import time
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

REDIRECT_URI = "https://portal.test/connect/callback"


@dataclass(frozen=True)
class Credential:
    """A certificate and key an app signs its client assertions with."""

    key_pem: str
    cert_pem: str
    sha1: str

    def with_certificate(self) -> dict:
        """MSAL's credential with the public certificate (PS256, ``x5t#S256``)."""
        return {"private_key": self.key_pem, "public_certificate": self.cert_pem}

    def with_thumbprint(self) -> dict:
        """MSAL's credential with a SHA-1 thumbprint (RS256, ``x5t``)."""
        return {"private_key": self.key_pem, "thumbprint": self.sha1}

    def assertion(self, audience: str, client_id: str) -> str:
        """A client assertion as certificate-credentials.md shows one (PS256,
        ``x5t#S256``; aud, exp, iss, jti, nbf, sub, iat), signed by hand."""
        cert = x509.load_pem_x509_certificate(self.cert_pem.encode())
        thumbprint = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256())).decode()
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        }
        headers = {"typ": "JWT", "x5t#S256": thumbprint.rstrip("=")}
        return jwt.encode(claims, self.key_pem, algorithm="PS256", headers=headers)


def make_credential(name: str) -> Credential:
    """A self-signed RSA certificate as an administrator would upload to Entra."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return Credential(key_pem, cert_pem, cert.fingerprint(hashes.SHA1()).hex())


class CASession(requests.Session):
    """A session that trusts the test CA; ``verify`` is passed per request because the
    machine's REQUESTS_CA_BUNDLE would override ``Session.verify``."""

    def __init__(self, bundle):
        super().__init__()
        self.bundle = str(bundle)

    def request(self, method, url, **kwargs):
        kwargs.setdefault("verify", self.bundle)
        return super().request(method, url, **kwargs)


class _Form(HTMLParser):
    """The fields and buttons of the first form on a page."""

    def __init__(self, html: str):
        super().__init__()
        self.action, self.fields, self.buttons = None, {}, {}
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attrs.get("action", "")
        elif tag == "input" and attrs.get("name"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return  # a browser sends a box only when it is ticked
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "button" and attrs.get("id"):
            self.buttons[attrs["id"]] = (attrs.get("name"), attrs.get("value"))


class Browser:
    """Walks Entra's sign-in and consent pages as a person would, with requests, and stops
    at the redirect back to the application."""

    def __init__(self, session: requests.Session):
        self.session = session

    def open(self, url: str) -> requests.Response:
        return self.session.get(url, allow_redirects=False)

    def press(self, page: requests.Response, button: str, **fields) -> requests.Response:
        """Fill in ``fields`` and submit the page's form with the button of this id."""
        form = _Form(page.text)
        assert button in form.buttons, f"no button {button} on {page.text}"
        data = {**form.fields, **fields}
        name, value = form.buttons[button]
        if name:
            data[name] = value
        return self.session.post(urljoin(page.url, form.action), data=data, allow_redirects=False)

    def sign_in(self, url: str, login: str, *buttons: str) -> dict:
        """Sign in as ``login``, press each further button; the app's callback query."""
        page = self.press(self.open(url), "idSIButton9", login=login)
        for button in buttons:
            page = self.press(page, button)
        return callback(page)


def callback(response: requests.Response) -> dict:
    """The query string of a redirect to the application's redirect URI."""
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    return dict(parse_qsl(urlsplit(location).query))


def form_post(response: requests.Response) -> dict:
    """The fields of a page that posts a result to the application (``form_post`` mode)."""
    assert response.status_code == 200, response.text
    form = _Form(response.text)
    assert form.action == REDIRECT_URI, form.action
    return form.fields


def access_token(directory, audience: str, tenant_id: str, client_id: str, **claims) -> str:
    """An access token with the claims the identity stand-in puts in its tokens
    (``TokenIssuer._access_token``): add ``roles`` for an app-only token, or ``scp`` and
    ``oid`` for a delegated one."""
    now = int(time.time())
    issuer = f"https://sts.windows.net/{tenant_id}/"
    return directory.sign(
        {
            "aud": audience,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "appid": client_id,
            "appidacr": "2",
            "idp": issuer,
            "tid": tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
            **claims,
        }
    )


class GraphClient:
    """Plain requests to the Graph stand-in with one bearer token; ``path`` is relative to
    ``/v1.0``, or a whole URL such as an ``@odata.nextLink``."""

    def __init__(self, session: requests.Session, base_url: str, token: str | None):
        self.session, self.base_url, self.token = session, base_url, token

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kwargs.pop("headers", {}))
        url = path if path.startswith("https://") else f"{self.base_url}/v1.0{path}"
        return self.session.request(method, url, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs) -> requests.Response:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json=None, **kwargs) -> requests.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def batch(self, *requests_: dict) -> requests.Response:
        return self.post("/$batch", json={"requests": list(requests_)})
