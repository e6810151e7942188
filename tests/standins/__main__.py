"""Serve the stand-ins with the demo directory, for trying the portal by hand.

    python -m tests.standins --pki-dir instance/standins --identity-port 5443 \
        --graph-port 5444 --certificate vendor.pem --redirect-uri http://127.0.0.1:5000/connect/callback

Point the portal's authority host and Graph endpoint at the printed URLs and trust
``<pki-dir>/bundle.pem``. Ctrl-C (or SIGTERM) stops both.

``--certificate`` and ``--redirect-uri`` register what an administrator would add to the
app registration; like the manifest (reply-url.md), they take an http://127.0.0.1 redirect
URI that the Entra page's Redirect URIs box refuses.
"""

import argparse
import signal
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .demo import seed_demo
from .directory import Directory
from .entra import create_entra_app
from .server import StandinServer, start_standins
from .tls import make_test_pki


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, seed the demo directory and serve until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.standins", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pki-dir", type=Path, required=True, help="where to write the test CA")
    parser.add_argument("--identity-port", type=int, default=0)
    parser.add_argument("--graph-port", type=int, default=0)
    parser.add_argument("--entra-port", type=int, default=0, help="app registrations page")
    parser.add_argument(
        "--certificate",
        type=Path,
        action="append",
        default=[],
        help="a PEM certificate to upload to the demo app (repeatable)",
    )
    parser.add_argument(
        "--redirect-uri", action="append", default=[], help="a redirect URI of the demo app"
    )
    args = parser.parse_args(argv)

    certificates = [pem for path in args.certificate for pem in _certificates(path)]
    pki = make_test_pki(args.pki_dir)
    directory = Directory()
    ids = seed_demo(directory, certificates=certificates, redirect_uris=args.redirect_uri)
    identity, graph = start_standins(
        directory, pki, args.identity_port, args.graph_port, quiet=False
    )
    entra = StandinServer(create_entra_app(directory), pki, args.entra_port, quiet=False).start()
    print(f"Identity stand-in: {identity.url}/{ids['tenant_domain']}", flush=True)
    print(f"Graph stand-in:    {graph.url}", flush=True)
    print(f"App registrations: {entra.url}/ (upload certificates, grant consent)", flush=True)
    print(f"CA bundle:         {pki.bundle_path}", flush=True)
    print(f"Tenant ID {ids['tenant_id']}, client ID {ids['client_id']}", flush=True)
    print(f"Users: {', '.join(ids['users'])}", flush=True)
    print(f"Group: mytimetable@contoso.edu ({ids['group_id']})", flush=True)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        identity.stop()
        graph.stop()
        entra.stop()


def _certificates(path: Path) -> list[str]:
    """The certificates in a PEM file (a file may also hold a key, which is left out)."""
    certificates = x509.load_pem_x509_certificates(path.read_bytes())
    return [c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates]


if __name__ == "__main__":
    main()
