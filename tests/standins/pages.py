"""The HTML pages of the identity stand-in: sign-in, consent, admin approval, errors.

Element ids follow Microsoft's pages (``idSIButton9``, ``idBtn_Accept``, ``idBtn_Back``) so
that browser tests written against the stand-in read like tests against the real thing.
Each page says it is a stand-in, so nobody mistakes it for Microsoft's.

The pages are those of application-consent-experience.md (the consent prompt: who is signed
in, the app, what it would like to do, Accept or Cancel; "Need admin approval" where the
user may not consent) and v2-admin-consent.md (an administrator accepts for the
organisation); the error page shows what Entra's does (code, message, request and
correlation IDs, timestamp: reference-error-codes.md).
"""

from jinja2 import DictLoader

# What Microsoft's consent pages say for each permission, the user-consent display strings
# of permissions-reference.md (Graph) and scopes-oidc.md (OpenID); others are shown by name.
DESCRIPTIONS = {
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
    "offline_access": "Maintain access to data you have given it access to",
    "User.Read": "Sign you in and read your profile",
    "Calendars.Read": "Read your calendars",
    "Calendars.ReadWrite": "Have full access to your calendars",
}
# The admin-consent display strings of the application permissions (permissions-reference.md).
APPLICATION_DESCRIPTIONS = {
    "Calendars.Read": "Read calendars in all mailboxes",
    "Calendars.ReadWrite": "Read and write calendars in all mailboxes",
}

LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{% block title %}Sign in to your account{% endblock %}</title>
<style>
body { font-family: "Segoe UI", sans-serif; background: #f2f2f2; margin: 0; }
main { background: #fff; max-width: 440px; margin: 60px auto; padding: 44px;
       box-shadow: 0 2px 6px rgba(0,0,0,.2); }
.brand { color: #737373; font-size: 13px; margin-bottom: 16px; }
h1 { font-size: 24px; font-weight: 600; margin: 0 0 16px; }
.error { color: #e81123; margin: 8px 0; }
input[type=email] { width: 100%; padding: 6px 0; font-size: 15px; border: 0;
                    border-bottom: 1px solid #666; }
button { min-width: 108px; padding: 6px 12px; margin: 16px 8px 0 0; font-size: 15px;
         border: 0; background: #ccc; cursor: pointer; }
button.primary { background: #0067b8; color: #fff; }
.details { color: #737373; font-size: 12px; margin-top: 24px; }
</style>
</head>
<body>
<main>
<div class="brand">Microsoft Entra ID &middot; test stand-in</div>
{% block content %}{% endblock %}
</main>
</body>
</html>
"""

HIDDEN_FIELDS = """{% for name, value in hidden %}
<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}"""

ERROR = """{% extends "layout.html" %}
{% block content %}
<h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error-code">AADSTS{{ code }}</p>
<p id="error-message">{{ message }}</p>
<div class="details">
<div>Request Id: {{ trace_id }}</div>
<div>Correlation Id: {{ correlation_id }}</div>
<div>Timestamp: {{ timestamp }}</div>
</div>
{% endblock %}
"""

SIGN_IN = """{% extends "layout.html" %}
{% block content %}
<h1>Sign in</h1>
<form method="post" action="{{ action }}">
{% include "hidden.html" %}
{% if error %}<div class="error" id="usernameError" role="alert">{{ error }}</div>{% endif %}
<label for="i0116">Email, phone, or Skype</label>
<input type="email" id="i0116" name="login" value="{{ login }}" autofocus
       autocomplete="username" placeholder="Email, phone, or Skype">
<button type="submit" id="idSIButton9" class="primary">Next</button>
</form>
{% endblock %}
"""

CONSENT = """{% extends "layout.html" %}
{% block title %}Permissions requested{% endblock %}
{% block content %}
<div id="signed-in-as">{{ login }}</div>
<h1>Permissions requested</h1>
<p id="app-name">{{ app_name }}</p>
<p>This app would like to:</p>
<ul id="permissions">
{% for permission, description in permissions %}
<li title="{{ permission }}">{{ description }}</li>
{% endfor %}
</ul>
<form method="post" action="{{ action }}">
{% include "hidden.html" %}
{% if for_organization %}
<label><input type="checkbox" name="for_organization" value="1" id="consentOrg">
Consent on behalf of your organization</label>
{% endif %}
<button type="submit" name="consent" value="cancel" id="idBtn_Back">Cancel</button>
<button type="submit" name="consent" value="accept" id="idBtn_Accept"
        class="primary">Accept</button>
</form>
{% endblock %}
"""

ADMIN_APPROVAL = """{% extends "layout.html" %}
{% block title %}Need admin approval{% endblock %}
{% block content %}
<div id="signed-in-as">{{ login }}</div>
<h1>Need admin approval</h1>
<p>{{ app_name }} needs permission to access resources in your organization that only an
admin can grant. Please ask an admin to grant permission to this app before you can use
it.</p>
<form method="post" action="{{ action }}">
{% include "hidden.html" %}
<button type="submit" name="consent" value="return" id="idBtn_Back">Return to the
application without granting consent</button>
</form>
{% endblock %}
"""

ADMIN_CONSENT = """{% extends "layout.html" %}
{% block title %}Permissions requested{% endblock %}
{% block content %}
<h1>Permissions requested</h1>
<h2>Accept for your organization</h2>
<p id="app-name">{{ app_name }}</p>
<p>This app would like to:</p>
<ul id="permissions">
{% for permission, description in permissions %}
<li title="{{ permission }}">{{ description }}</li>
{% endfor %}
</ul>
<p>If you accept, this app will get access to the specified resources for all users in
your organization. No one else will be prompted to review these permissions.</p>
<form method="post" action="{{ action }}">
{% include "hidden.html" %}
{% if error %}<div class="error" id="usernameError" role="alert">{{ error }}</div>{% endif %}
<label for="i0116">Sign in as an administrator: email, phone, or Skype</label>
<input type="email" id="i0116" name="login" value="{{ login }}" autocomplete="username">
<button type="submit" name="consent" value="cancel" id="idBtn_Back">Cancel</button>
<button type="submit" name="consent" value="accept" id="idBtn_Accept"
        class="primary">Accept</button>
</form>
{% endblock %}
"""

FORM_POST = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Working...</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="{{ action }}">
{% include "hidden.html" %}
<noscript><p>Script is disabled. Click Submit to continue.</p>
<input type="submit" value="Submit"></noscript>
</form>
</body>
</html>
"""

SIGNED_OUT = """{% extends "layout.html" %}
{% block title %}Sign out{% endblock %}
{% block content %}
<h1>You signed out of your account</h1>
<p>It's a good idea to close all browser windows.</p>
{% endblock %}
"""

LOADER = DictLoader(
    {
        "layout.html": LAYOUT,
        "hidden.html": HIDDEN_FIELDS,
        "error.html": ERROR,
        "signin.html": SIGN_IN,
        "consent.html": CONSENT,
        "approval.html": ADMIN_APPROVAL,
        "adminconsent.html": ADMIN_CONSENT,
        "formpost.html": FORM_POST,
        "signedout.html": SIGNED_OUT,
    }
)


def describe(permissions, descriptions=DESCRIPTIONS) -> list[tuple[str, str]]:
    """Pairs of (permission, what the consent page says about it)."""
    return [(name, descriptions.get(name, name)) for name in permissions]
