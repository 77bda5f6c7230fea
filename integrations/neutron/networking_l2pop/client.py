"""The l2pop server's REST API, as the journal needs it.

Identity: l2pop names each network, subnet and port it mirrors after the Neutron id (``name`` =
Neutron UUID) and also offers that id as ``id``. A server that takes client ids keeps Neutron's
ids (then the casts carry Neutron's network ids); one that refuses ``id`` ("Unrecognized
attribute") assigns its own, and the driver finds them again by name. The name is also what
makes a retried create idempotent: before creating, the client looks the name up, so a create
whose answer was lost (server killed after its commit) is not made twice.

Every call returns an :class:`Outcome`: ``done``, ``retry`` (the server could not take it now:
unreachable, 5xx, standby, bad token) or ``refused`` (a 4xx about the request itself; retrying
would give the same answer).
"""

import json

import requests

DONE = "done"
RETRY = "retry"
REFUSED = "refused"


class Outcome:
    __slots__ = ("kind", "detail")

    def __init__(self, kind, detail=""):
        self.kind = kind
        self.detail = detail

    def __repr__(self):
        return "Outcome(%s, %r)" % (self.kind, self.detail)


def classify(status, body):
    """Outcome of an HTTP answer (2xx done; 401/403/408/429/5xx retry; other 4xx refused)."""
    if 200 <= status < 300:
        return Outcome(DONE)
    detail = "%s %s" % (status, json.dumps(body) if not isinstance(body, str) else body)
    if status in (401, 403, 408, 429) or status >= 500:
        return Outcome(RETRY, detail)
    return Outcome(REFUSED, detail)


def _field(body):
    try:
        return body["NeutronError"].get("field")
    except (KeyError, TypeError, AttributeError):
        return None


class L2popClient:
    """A JSON client with a cache of Neutron id -> l2pop id per collection."""

    def __init__(self, url, token, timeout=10.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self._ids = {}
        # None: unknown yet; True/False once a create told us.
        self.takes_ids = None

    def call(self, method, path, body=None):
        """(status, json body or text); raises requests.RequestException when unreachable."""
        response = self.session.request(
            method,
            self.url + path,
            json=body,
            headers={"X-Auth-Token": self.token},
            timeout=self.timeout,
        )
        if not response.content:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def forget(self, collection, neutron_id):
        self._ids.pop((collection, neutron_id), None)

    def on(self, collection, neutron_id, method, suffix="", body=None):
        """``method`` on the l2pop resource named ``neutron_id`` (+ ``suffix``): (Outcome, found).

        A 404 for a cached id asks the server for the id again once."""
        for fresh in (False, True):
            outcome, l2pop_id = self.lookup(collection, neutron_id, fresh=fresh)
            if outcome.kind != DONE or l2pop_id is None:
                return outcome, False
            status, answer = self.call(method, "/v2.0/%s/%s%s" % (collection, l2pop_id, suffix), body)
            if status != 404 or fresh:
                return classify(status, answer), status != 404
        raise AssertionError("unreachable")

    def lookup(self, collection, neutron_id, fresh=False):
        """The l2pop id of the resource named after ``neutron_id``: (Outcome, id or None).

        From the cache unless ``fresh`` (the server's answer then replaces the cache: a
        server restored from a backup, or rebuilt by a full sync, has other ids)."""
        key = (collection, neutron_id)
        if key in self._ids and not fresh:
            return Outcome(DONE), self._ids[key]
        self._ids.pop(key, None)
        status, body = self.call("GET", "/v2.0/%s?name=%s" % (collection, neutron_id))
        outcome = classify(status, body)
        if outcome.kind != DONE:
            return outcome, None
        items = body.get(collection, [])
        if not items:
            return Outcome(DONE), None
        self._ids[key] = items[0]["id"]
        return Outcome(DONE), items[0]["id"]

    def create(self, collection, neutron_id, attributes):
        """POST unless a resource named ``neutron_id`` exists (asked, not cached); (Outcome, id)."""
        outcome, existing = self.lookup(collection, neutron_id, fresh=True)
        if outcome.kind != DONE or existing is not None:
            return outcome, existing
        key = collection[:-1]
        attributes = dict(attributes, name=neutron_id)
        if self.takes_ids is not False:
            status, body = self.call("POST", "/v2.0/" + collection, {key: dict(attributes, id=neutron_id)})
            if status == 400 and _field(body) == "id":
                self.takes_ids = False
            else:
                if 200 <= status < 300:
                    self.takes_ids = True
                return self._created(collection, neutron_id, key, status, body)
        status, body = self.call("POST", "/v2.0/" + collection, {key: attributes})
        return self._created(collection, neutron_id, key, status, body)

    def _created(self, collection, neutron_id, key, status, body):
        outcome = classify(status, body)
        if outcome.kind != DONE:
            return outcome, None
        self._ids[(collection, neutron_id)] = body[key]["id"]
        return outcome, body[key]["id"]
