"""A one-page stand-in of the Entra admin center's app registrations, for trying the portal
by hand (``PORTAL_STANDINS=1 ./dev run``): upload a certificate, add a redirect URI, grant
or revoke admin consent, as the wizard's step 3 asks the administrator to do in Entra.

Each action follows its Microsoft document: certificate-credentials.md ("Uploading the
certificate file"), reply-url.md (what the Redirect URIs box accepts) and
grant-admin-consent.md (the "Grant admin consent for <tenant>" button)."""

from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from flask import Flask, redirect, render_template_string, request, url_for

from .directory import AppRegistration, Directory

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>App registrations (stand-in)</title>
<style>
body { font-family: "Segoe UI", system-ui, sans-serif; margin: 0; background: #faf9f8; color: #323130; }
header { background: #0078d4; color: #fff; padding: 12px 24px; font-weight: 600; }
main { max-width: 960px; margin: 24px auto; padding: 0 24px; }
section { background: #fff; border: 1px solid #edebe9; border-radius: 4px; padding: 16px 20px; margin-bottom: 20px; }
code { background: #f3f2f1; padding: 1px 4px; }
textarea { width: 100%; height: 90px; font-family: monospace; }
input[type=url] { width: 70%; }
button { background: #0078d4; color: #fff; border: 0; padding: 6px 14px; border-radius: 2px; cursor: pointer; }
.note { color: #605e5c; font-size: .9em; }
</style></head><body>
<header>Microsoft Entra admin center (stand-in) &rsaquo; App registrations</header>
<main>
<p class="note">A stand-in for trying the MyTimetable portal without a Microsoft tenant. Changes apply at once.</p>
{% for app in apps %}
<section>
  <h2>{{ app.display_name }}</h2>
  <p>Application (client) ID <code>{{ app.client_id }}</code> · Directory (tenant) ID <code>{{ app.tenant_id }}</code></p>
  <h3>Certificates &amp; secrets › Certificates</h3>
  <ul>{% for thumbprint in thumbprints[app.client_id] %}<li>Thumbprint <code>{{ thumbprint }}</code></li>{% else %}<li>No certificates uploaded.</li>{% endfor %}</ul>
  <form method="post" action="{{ url_for('upload', tenant=app.tenant_id, client=app.client_id) }}" enctype="multipart/form-data">
    <label>Upload certificate (.cer, .pem, .crt) <input type="file" name="file"></label>
    <p><label>or paste PEM<br><textarea name="pem"></textarea></label></p>
    <button>Add</button>
  </form>
  <h3>Authentication › Redirect URIs (Web)</h3>
  <ul>{% for uri in app.redirect_uris %}<li><code>{{ uri }}</code></li>{% else %}<li>None.</li>{% endfor %}</ul>
  <form method="post" action="{{ url_for('redirect_uri', tenant=app.tenant_id, client=app.client_id) }}">
    <input type="url" name="uri" required placeholder="https://…/connect/callback"> <button>Add URI</button>
  </form>
  {% if refused and refused[0] == app.client_id %}<p class="note" role="alert">{{ refused[1] }}</p>{% endif %}
  <h3>API permissions</h3>
  <p>Application: {{ app.application_permissions|sort|join(', ') or 'none' }} · Delegated: {{ app.delegated_permissions|sort|join(', ') or 'none' }}</p>
  <p>Admin consent: <strong>{{ 'Granted for the organisation' if app.admin_consented else 'Not granted' }}</strong></p>
  <form method="post" action="{{ url_for('consent', tenant=app.tenant_id, client=app.client_id) }}">
    <input type="hidden" name="grant" value="{{ '0' if app.admin_consented else '1' }}">
    <button>{{ 'Revoke admin consent' if app.admin_consented else 'Grant admin consent' }}</button>
  </form>
</section>
{% endfor %}
</main></body></html>"""


def _pem_certificates(data: bytes) -> list[str]:
    if b"-----BEGIN CERTIFICATE-----" in data:
        found = x509.load_pem_x509_certificates(data)
    else:
        found = [x509.load_der_x509_certificate(data)]
    return [c.public_bytes(serialization.Encoding.PEM).decode() for c in found]


# reply-url.md: at most 256 characters, none of these special characters.
MAX_REDIRECT_URI = 256
UNSUPPORTED_CHARACTERS = set("!$'(),;")


def redirect_uri_problem(uri: str) -> str | None:
    """Why the Redirect URIs box refuses ``uri`` (reply-url.md), or None: https, or http
    for localhost only; http://127.0.0.1 only through the manifest, not this box."""
    parts = urlsplit(uri)
    if len(uri) > MAX_REDIRECT_URI:
        return f"A redirect URI can have at most {MAX_REDIRECT_URI} characters."
    if UNSUPPORTED_CHARACTERS & set(uri):
        return "A redirect URI cannot contain any of ! $ ' ( ) , ;"
    if not parts.hostname or parts.scheme not in ("https", "http"):
        return "The redirect URI must be an absolute https:// URI."
    if parts.scheme == "http" and parts.hostname != "localhost":
        return "The redirect URI must begin with https:// (http:// only for localhost)."
    return None


def _thumbprint(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def create_entra_app(directory: Directory) -> Flask:
    """The app-registrations page over ``directory``."""
    app = Flask(__name__)

    def registration(tenant: str, client: str) -> AppRegistration:
        found = directory.app(tenant, client)
        if found is None:
            raise LookupError(client)
        return found

    def page(refused: tuple[str, str] | None = None, status: int = 200):
        with directory.lock:
            apps = list(directory.apps.values())
            thumbprints = {a.client_id: [_thumbprint(p) for p in a.certificates] for a in apps}
        return render_template_string(
            PAGE, apps=apps, thumbprints=thumbprints, refused=refused
        ), status

    @app.get("/")
    def index():
        return page()

    @app.post("/<tenant>/<client>/certificates")
    def upload(tenant, client):
        data = request.files["file"].read() if request.files.get("file") else b""
        data = data or request.form.get("pem", "").encode()
        try:
            pems = _pem_certificates(data)
        except ValueError:
            return "That is not a certificate. Go back and choose the .cer file.", 400
        with directory.lock:
            registration(tenant, client).certificates.extend(pems)
        return redirect(url_for("index"))

    @app.post("/<tenant>/<client>/redirect-uris")
    def redirect_uri(tenant, client):
        uri = request.form["uri"].strip()
        problem = redirect_uri_problem(uri)
        if problem:
            return page(refused=(registration(tenant, client).client_id, problem), status=400)
        with directory.lock:
            registration(tenant, client).redirect_uris.append(uri)
        return redirect(url_for("index"))

    @app.post("/<tenant>/<client>/consent")
    def consent(tenant, client):
        with directory.lock:
            registration(tenant, client).admin_consented = request.form.get("grant") == "1"
        return redirect(url_for("index"))

    return app
