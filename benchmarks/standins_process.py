"""The Microsoft stand-ins in a process of their own, for the sync benchmark.

    python benchmarks/standins_process.py --pki-dir DIR --certificate vendor.pem --users 1000 \
        --identity-port 5443 --graph-port 5444

Serves the identity and Graph stand-ins over the demo directory with ``--users`` extra
mailboxes (user00000@contoso.edu, ...) and the portal's app registration consented for the
whole tenant, with no access policy, over https with the test PKI already made in
``--pki-dir`` (``tests.standins.tls.make_test_pki``). Prints one JSON line,
{"identity": url, "graph": url}, once both serve; stops when its standard input closes
(the benchmark ended or died).

Commands on standard input, one a line, each answered with one JSON line:
``latency MS ITEM_MS`` has every Graph answer come MS milliseconds late, and a ``$batch``
answer ITEM_MS more per request it carries (the real service takes 100 to 500 ms);
``counts`` answers the directory's request counters.

In a process of its own the stand-in does not take the GIL from the engine being measured.
"""

import argparse
import contextlib
import json
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.standins.demo import CONTOSO_TENANT_ID, DEMO_CLIENT_ID, seed_demo  # noqa: E402
from tests.standins.directory import Directory, User  # noqa: E402
from tests.standins.server import start_standins  # noqa: E402
from tests.standins.tls import TestPKI  # noqa: E402


def mailbox(n: int) -> str:
    """The UPN of the benchmark's ``n``-th mailbox."""
    return f"user{n:05}@contoso.edu"


def main() -> None:
    """Seed the directory, serve, print the URLs, and serve until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pki-dir", type=Path, required=True)
    parser.add_argument("--certificate", type=Path, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--identity-port", type=int, default=0)
    parser.add_argument("--graph-port", type=int, default=0)
    args = parser.parse_args()

    pki = TestPKI(
        ca_path=args.pki_dir / "ca.pem",
        cert_path=args.pki_dir / "server.pem",
        key_path=args.pki_dir / "server-key.pem",
        bundle_path=args.pki_dir / "bundle.pem",
    )
    directory = Directory()
    seed_demo(directory, certificates=[args.certificate.read_text()])
    registration = directory.app(CONTOSO_TENANT_ID, DEMO_CLIENT_ID)
    registration.admin_consented, registration.policy_mailboxes = True, None
    for n in range(args.users):
        directory.add_user(User(str(uuid.uuid4()), mailbox(n), CONTOSO_TENANT_ID, mailbox(n)))
    identity, graph = start_standins(directory, pki, args.identity_port, args.graph_port)
    print(json.dumps({"identity": identity.url, "graph": graph.url}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        for line in sys.stdin:
            command, *values = line.split()
            if command == "latency":
                directory.request_latency = float(values[0]) / 1000
                directory.batch_item_latency = float(values[1]) / 1000
                print(json.dumps({"latency": values}), flush=True)
            elif command == "counts":
                with directory.lock:
                    print(json.dumps(dict(directory.counters)), flush=True)
    identity.stop()
    graph.stop()


if __name__ == "__main__":
    main()
