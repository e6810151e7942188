"""The MyTimetable Office 365 connection portal."""

from pathlib import Path

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from . import config as settings
from .extensions import babel, csrf, db, limiter, migrate, provisioning_api, sessions

ROOT = Path(__file__).resolve().parent.parent
HEALTH_PATH = "/healthz"
# On every response (and HSTS on those served over https).
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self' https:; base-uri 'none'; object-src 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)
# The areas whose pages are behind a sign-in or an invitation: no browser or proxy keeps
# a copy of them (a shared computer's back button, a cache between the portal and the user).
NO_STORE_AREAS = frozenset({"setup", "connect", "support", "api"})
API_PREFIX = "/api/"


def create_app(config: dict | None = None) -> Flask:
    """Make the portal: settings from the environment, then ``config`` on top (tests)."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    values = settings.from_environment(app.instance_path, config)
    values = {**settings.defaults(values), **values}
    app.config.update(values)
    register_converters(app)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_converters(app: Flask) -> None:
    """Every ``<int:...>`` in a route is a row ID: only numbers the database can hold match."""
    from .urls import RowIdConverter

    app.url_map.converters["int"] = RowIdConverter


def warm_up(app: Flask) -> None:
    """Do once what each process would otherwise do on its first requests: compile every
    template and read each language's catalog. gunicorn calls it before it starts its
    workers (``gunicorn.conf.py``), so that every worker, and every replacement, starts
    with them."""
    from flask_babel import force_locale, get_translations

    from .i18n import LANGUAGES

    for name in app.jinja_env.list_templates(extensions=["html"]):
        app.jinja_env.get_template(name)
    with app.test_request_context():
        for code in LANGUAGES:
            with force_locale(code):
                get_translations()


def register_logging(app: Flask) -> None:
    """One handler for every logger: JSON lines in production, readable lines in
    development, each with its request's ID; no keys (``portal.logs``)."""
    from . import logs

    logs.init_app(app)


def register_extensions(app: Flask) -> None:
    """Bind the extensions, the server-side session store and the Microsoft clients."""
    from . import i18n, security
    from .metrics import PATH as METRICS_PATH
    from .microsoft import http, identity
    from .session_store import DatabaseSessionInterface, SessionlessPaths

    security.check_keys(app.config["ENCRYPTION_KEYS"])
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    if app.config["REDIS_URL"]:
        import redis

        app.config["SESSION_TYPE"] = "redis"
        app.config["SESSION_REDIS"] = redis.Redis.from_url(app.config["REDIS_URL"])
        app.config["SESSION_KEY_PREFIX"] = "portal:session:"
        sessions.init_app(app)
    else:
        app.session_interface = DatabaseSessionInterface(app)
    # The API is called with a key, never a cookie: it neither reads nor makes a session.
    app.session_interface = SessionlessPaths(
        app.session_interface, frozenset({HEALTH_PATH, METRICS_PATH}), prefixes=(API_PREFIX,)
    )
    if app.config["PROXY_HOPS"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    http.init_app(app)
    identity.init_app(app)
    provisioning_api.init_app(
        app,
        spec_kwargs={
            "servers": [{"url": app.config["EXTERNAL_URL"]}],
            "components": {
                "securitySchemes": {
                    "apiKey": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API key made in the support console.",
                    }
                }
            },
            "security": [{"apiKey": []}],
        },
    )


def register_blueprints(app: Flask) -> None:
    """The audiences' areas: the wizard, Microsoft's callback, the support console, the
    provisioning API (exempt from CSRF: it takes a key, never a cookie); the language
    switcher every page has; and the operators' metrics."""
    from . import i18n, metrics, models, verification
    from .api import bp as api_bp
    from .connect import bp as connect_bp
    from .microsoft.errors import advice_for, display_code
    from .setup import bp as setup_bp
    from .support import bp as support_bp

    app.register_blueprint(setup_bp)
    app.register_blueprint(connect_bp)
    app.register_blueprint(support_bp)
    csrf.exempt(api_bp)
    provisioning_api.register_blueprint(api_bp)
    app.add_template_filter(display_code, "microsoft_code")
    app.add_template_filter(advice_for, "advice")
    # Templates compare states with the enums, never with their spelled-out values.
    app.jinja_env.globals.update(
        Method=models.Method,
        Hosting=models.Hosting,
        Status=models.Status,
        ConnectionStatus=models.ConnectionStatus,
        CheckOutcome=models.CheckOutcome,
        PassState=models.PassState,
    )
    app.add_template_filter(verification.evidence_text, "evidence")
    i18n.init_app(app)
    metrics.init_app(app)

    @app.get("/")
    def index():
        return render_template("index.html")

    @app.get(HEALTH_PATH)
    def healthz():
        """Whether the database takes writes (and Redis, when configured, answers); JSON,
        503 naming what is down. Served without a session (``SessionlessPaths``)."""
        from . import health

        return health.summary(health.check())

    @app.after_request
    def security_headers(response):
        headers = response.headers
        for name, value in SECURITY_HEADERS:
            if name not in headers:  # a view may set its own
                headers.add(name, value)
        if request.is_secure and "Strict-Transport-Security" not in headers:
            headers.add("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.blueprint in NO_STORE_AREAS:
            headers["Cache-Control"] = "no-store"
        return response


def register_errorhandlers(app: Flask) -> None:
    """Friendly pages for every error a person can cause; never a stack trace. Under
    the API, RFC 9457 problem details instead (in place of flask-smorest's own answer)."""
    from .api import problems

    def render(error):
        if not isinstance(error, HTTPException):  # an exception no view caught
            error = InternalServerError(original_exception=error)
        if problems.wanted():
            return problems.from_http_exception(error)
        code = getattr(error, "code", 500) or 500
        return render_template("errors/error.html", error=error, code=code), code

    for code in (400, 403, 404, 405, 410, 413, 429, 500):
        app.register_error_handler(code, render)
    app.register_error_handler(HTTPException, render)

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template("errors/csrf.html", error=error), 400


def register_commands(app: Flask) -> None:
    """``flask invite``, ``flask vendor-cert``, ``flask demo`` and the database commands."""
    from . import cli

    cli.register(app)
