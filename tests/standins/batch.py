"""JSON batching for the Graph stand-in: ``POST /v1.0/$batch``.

Each rule follows "Combine multiple HTTP requests using JSON batching" (json-batching.md)
unless it names another source:

- At most 20 requests; ids unique regardless of case; a request with a body needs a
  ``Content-Type`` header, and a write needs a body even where its target takes none (the
  document's note on its sample request 4: "only body can be an empty object"); otherwise
  the whole batch is refused 400, in the words Graph uses.
- ``dependsOn`` sequences requests, and "Batch should be either fully sequential or fully
  parallel": a batch that mixes the two (parallel chains, a fork, a request left out of
  the sequence) is refused 400 as a whole, in Graph's words (microsoft-graph-docs issue
  16280, confirmed by the docs team). A request whose dependency failed is answered 424.
- Each request runs through the stand-in's own handlers with the batch's bearer token and
  is answered with its own ``status``, ``headers`` and ``body``. "Individual responses
  might appear in a different order than the requests": the stand-in lists each wave's
  answers last to first, so that a client which pairs them by position fails here too.

Graph runs the requests that do not depend on each other in parallel, and each of them
counts against a mailbox's limit of four concurrent requests (throttling-limits.md,
Outlook service limits; json-batching.md: "Requests in a batch are evaluated individually
against the applicable throttling limits"). The stand-in runs them one after another but
has each keep its mailbox slot until its whole wave has run, so that
``Directory.max_concurrency`` and ``mailbox_concurrency_limit`` see them as concurrent.
"""

import base64
import io
import json
import sys
import time
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask
from werkzeug.datastructures import Headers

from .directory import Directory
from .odata import GraphError, error_body

MAX_REQUESTS = 20
METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}
WRITES = {"POST", "PATCH", "PUT"}
# The WSGI environ key under which a batch wave collects the mailbox slots its requests hold.
MAILBOX_SLOTS = "standins.batch_mailbox_slots"
ANSWERED_HEADERS = ("Location", "Retry-After", "Preference-Applied", "Content-Type")
INVALID_PAYLOAD = "Invalid batch payload format."
MIXED = "Batch should be either fully sequential or fully parallel."


@dataclass
class Step:
    """One request of a batch."""

    id: str
    method: str
    url: str
    headers: dict
    body: object
    depends_on: list[str]


def run_batch(app: Flask, directory: Directory, payload, authorization: str, base_url: str) -> dict:
    """The batch response for a batch request body (JSON bodies as ``JSONText``: see
    ``encode``); raises ``GraphError`` (400) for a batch Graph would refuse as a whole."""
    steps = parse_batch(payload)
    answers: dict[str, dict] = {}
    waves = _waves(steps)
    for wave in waves:
        slots: list = []
        try:
            for step in wave:
                if any(answers[d.lower()]["status"] >= 400 for d in step.depends_on):
                    answers[step.id.lower()] = _failed_dependency(step)
                else:
                    answers[step.id.lower()] = _run(app, step, authorization, base_url, slots)
            if slots and directory.mailbox_latency:
                time.sleep(directory.mailbox_latency)
        finally:
            for owner in slots:
                directory.leave_mailbox(owner)
    return {"responses": [answers[step.id.lower()] for wave in waves for step in wave[::-1]]}


class JSONText(str):
    """A body that is JSON text already (a handler's own answer): ``encode`` puts it into
    the batch answer as it is, rather than reading it and writing it again."""


def encode(result: dict) -> str:
    """The batch answer from ``run_batch`` as JSON text."""
    parts = []
    for answer in result["responses"]:
        body = answer.get("body")
        if isinstance(body, JSONText):
            head = json.dumps({name: value for name, value in answer.items() if name != "body"})
            parts.append(f'{head[:-1]}, "body": {body}}}')
        else:
            parts.append(json.dumps(answer))
    return '{"responses": [' + ", ".join(parts) + "]}"


def parse_batch(payload) -> list[Step]:
    """The steps of a batch request body, checked as Graph checks them."""
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise GraphError(400, "BadRequest", INVALID_PAYLOAD)
    if len(payload["requests"]) > MAX_REQUESTS:
        message = f"Number of requests in the batch exceeds the limit of {MAX_REQUESTS}."
        raise GraphError(400, "BadRequest", message)
    steps: list[Step] = []
    for item in payload["requests"]:
        step = _step(item)
        if any(step.id.lower() == seen.id.lower() for seen in steps):
            raise GraphError(
                400, "BadRequest", f"Request Id {step.id} has to be unique in a batch."
            )
        has_type = any(name.lower() == "content-type" for name in step.headers)
        if (step.body is not None and not has_type) or (
            step.method in WRITES and step.body is None
        ):
            message = f"Write request id : {step.id} does not contain Content-Type header or body."
            raise GraphError(400, "BadRequest", message)
        steps.append(step)
    ids = {step.id.lower() for step in steps}
    for step in steps:
        for dependency in step.depends_on:
            if dependency.lower() not in ids:
                message = (
                    f"Request {step.id} depends on request {dependency}, which is not in the batch."
                )
                raise GraphError(400, "BadRequest", message)
    _fully_sequential_or_fully_parallel(steps)
    return steps


def _fully_sequential_or_fully_parallel(steps: list[Step]) -> None:
    """Refuse a batch whose ``dependsOn`` do not make one single sequence: with any
    ``dependsOn`` at all, one request starts it and every other one waits on exactly one
    request that no other one waits on."""
    sequenced = [step for step in steps if step.depends_on]
    if not sequenced:
        return
    awaited = [dependency.lower() for step in sequenced for dependency in step.depends_on]
    if (
        len(steps) - len(sequenced) != 1
        or any(len(step.depends_on) != 1 for step in sequenced)
        or len(set(awaited)) != len(awaited)
    ):
        raise GraphError(400, "BadRequest", MIXED)


def _step(item) -> Step:
    if not isinstance(item, dict):
        raise GraphError(400, "BadRequest", INVALID_PAYLOAD)
    fields = (item.get("id"), item.get("method"), item.get("url"))
    headers = item.get("headers") or {}
    depends_on = item.get("dependsOn") or []
    well_formed = (
        all(isinstance(value, str) and value for value in fields)
        and str(item["method"]).upper() in METHODS
        and isinstance(headers, dict)
        and all(isinstance(v, str) for v in headers.values())
        and isinstance(depends_on, list)
        and all(isinstance(d, str) for d in depends_on)
    )
    if not well_formed:
        raise GraphError(400, "BadRequest", INVALID_PAYLOAD)
    return Step(
        item["id"], item["method"].upper(), item["url"], headers, item.get("body"), depends_on
    )


def _waves(steps: list[Step]) -> list[list[Step]]:
    """The steps grouped by how many dependencies deep they are: each wave runs after the
    one before, its own steps in parallel."""
    by_id = {step.id.lower(): step for step in steps}
    depth: dict[str, int] = {}

    def measure(step: Step, path: tuple[str, ...]) -> int:
        key = step.id.lower()
        if key in path:
            raise GraphError(400, "BadRequest", f"Request {step.id} depends on itself.")
        if key not in depth:
            depth[key] = 1 + max(
                (measure(by_id[d.lower()], (*path, key)) for d in step.depends_on), default=-1
            )
        return depth[key]

    waves: list[list[Step]] = []
    for step in steps:
        level = measure(step, ())
        waves.extend([] for _ in range(level + 1 - len(waves)))
        waves[level].append(step)
    return waves


def _run(app: Flask, step: Step, authorization: str, base_url: str, slots: list) -> dict:
    """Run one step through the app's own handlers, in a fresh application context so that
    it has its own ``g``."""
    data = b""
    if isinstance(step.body, str):
        data = base64.urlsafe_b64decode(step.body + "=" * (-len(step.body) % 4))
    elif step.body is not None:
        data = json.dumps(step.body).encode()
    environ = _environ(step, authorization, base_url, data)
    environ[MAILBOX_SLOTS] = slots
    started: list = []
    with app.app_context():
        chunks = app.wsgi_app(
            environ, lambda status, headers, *_: started.extend((status, headers))
        )
        try:
            raw = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
    status, headers = started
    answered = Headers(headers)
    answer = {
        "id": step.id,
        "status": int(status.split(" ", 1)[0]),
        "headers": {name: answered[name] for name in ANSWERED_HEADERS if name in answered},
    }
    if raw:
        mimetype = answered.get("Content-Type", "").split(";")[0].strip().lower()
        is_json = mimetype == "application/json" or (
            mimetype.startswith("application/") and mimetype.endswith("+json")
        )
        answer["body"] = JSONText(raw.decode()) if is_json else raw.decode(errors="replace")
    else:
        answer["headers"].pop("Content-Type", None)
    return answer


def _environ(step: Step, authorization: str, base_url: str, data: bytes) -> dict:
    """The WSGI environ of one step, as a server would give it for a request to ``base_url``
    (the batch's own host) with the batch's bearer token."""
    base = urlsplit(base_url)
    path, _, query = ("/v1.0/" + step.url.lstrip("/")).partition("?")
    environ = {
        "REQUEST_METHOD": step.method,
        "SCRIPT_NAME": "",
        # WSGI gives the decoded path as latin-1 text, bytes for bytes.
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": base.hostname or "localhost",
        "SERVER_PORT": str(base.port or (443 if base.scheme == "https" else 80)),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": base.netloc,
        "HTTP_AUTHORIZATION": authorization,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": base.scheme or "https",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in step.headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key == "CONTENT_TYPE":
                environ[key] = value
        elif key != "AUTHORIZATION":
            environ[f"HTTP_{key}"] = value.encode().decode("latin-1")
    return environ


def _failed_dependency(step: Step) -> dict:
    return {
        "id": step.id,
        "status": 424,
        "headers": {"Content-Type": "application/json"},
        "body": error_body("FailedDependency", "A request this request depends on failed."),
    }
