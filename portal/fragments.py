"""Parts of pages rendered once and kept, with Flask-Caching's ``{% cache %}`` tag.

Some parts of the pages are long and the same for many requests: the header and footer,
the stepper, the fields of steps 1 and 4 as saved (never a form with errors), step 2's
certificate part for managed hosting and the certificate table, step 3's choice and Entra
instructions, the status page's Disconnect part. A template wraps such a part in
``{% cache None, 'name', fragment_key(value, ...) %} ... {% endcache %}``, naming every
value the part shows or depends on; ``fragment_key`` adds the page's language and
the portal's path prefix (for its links), and makes one digest of them, so that two
different sets of values never share a key.

The kept parts live in each process's memory (cachelib's SimpleCache, bounded in entries).
Nothing in them is secret or personal beyond what the key names, and a part is rendered
from its key's values alone, so processes never need to agree: each fills its own. They
are not kept when the portal runs in debug mode, where templates are edited and reloaded.
"""

import hashlib

from flask import Flask, has_request_context, request
from flask_babel import get_locale
from jinja2 import pass_context

from .extensions import fragments

# A part is rendered from its key alone, so it never goes stale; the limits only bound the
# memory a process gives to parts no longer asked for. Past ENTRIES, the parts expiring
# first (the oldest) make room.
ENTRIES = 2000
LIFETIME = 24 * 3600


@pass_context
def fragment_key(context, *values) -> str:
    """One key for ``values``, the page's language and the path the portal is served under.

    The language is the page's own (``current_language``, which every page's context has),
    or, in a macro's context, which has none, Flask-Babel's choice for the request.
    """
    language = context.get("current_language") or str(get_locale())
    prefix = request.script_root if has_request_context() else ""
    return hashlib.sha256(repr((language, prefix, *values)).encode()).hexdigest()


def init_app(app: Flask) -> None:
    fragments.init_app(
        app,
        config={
            "CACHE_TYPE": "NullCache" if app.debug else "SimpleCache",
            "CACHE_DEFAULT_TIMEOUT": LIFETIME,
            "CACHE_THRESHOLD": ENTRIES,
            "CACHE_NO_NULL_WARNING": True,
        },
    )
    app.jinja_env.globals["fragment_key"] = fragment_key
