"""The charity-day mix for locust (run by bench/load/run.py; not meant to be run by hand).

Every simulated user is one donor (with its own access token) and every task sends exactly one
request, so the task weights are the request mix:

  70 % browsing   feed (new query with filters: 15, next page by cursor: 15), wish card (25),
                  /stats (7), ledger entries page (5), ledger checkpoint (3)
  20 % claiming   POST /wishes/{id}/claims on a wish picked Zipf-like among those still believed
                  open (shared by all users of this process), so the hot wishes draw several
                  donors at the same moment; 409 (wish_already_claimed, claim_limit_reached,
                  wish_not_open) is an expected answer, not an error
  10 % proofs     POST /claims/{id}/proofs (multipart JPEG + note, fresh Idempotency-Key) on a
                  claim this donor holds; a few are re-sent with the same key and must be
                  replayed. A donor holding no claim claims instead (counted as such).

Each request's kind, status, `code` and latency are recorded by an event listener and written as
JSON to $LOAD_RECORD when locust quits; run.py computes the figures from that file.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import secrets
import sys
import threading
import time
from pathlib import Path

from locust import FastHttpUser, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run by locust as a file
from upload_body import multipart  # noqa: E402

FIXTURES = json.loads(Path(os.environ["LOAD_FIXTURES"]).read_text())
PHOTOS = [p.read_bytes() for p in sorted(Path(os.environ["LOAD_PHOTOS"]).glob("*.jpg"))]
RECORD_PATH = Path(os.environ["LOAD_RECORD"])
WAIT_MIN, WAIT_MAX = (float(v) for v in os.environ.get("LOAD_WAIT", "1,4").split(","))
ZIPF = float(os.environ.get("LOAD_ZIPF", "1.1"))
REPLAY_SHARE = 0.05
API = "/api/v1"

KINDS = ["goods", "service", "education"]
LEVELS = ["red", "orange", "yellow", "blue"]
CATEGORIES = ["elderly", "illness", "disability", "livelihood", "education", "housing", "child",
              "accident"]

# Popularity order: rank 0 is the hottest wish. Cards are viewed Zipf-like over all of them;
# claims go Zipf-like over those still believed open.
ALL_WISHES: list[str] = list(FIXTURES["open_wishes"])
_CUM_ALL = list(itertools.accumulate(1 / (r + 1) ** ZIPF for r in range(len(ALL_WISHES))))
_open = list(ALL_WISHES)
_open_lock = threading.Lock()  # gevent greenlets: cheap, but keeps the list consistent
_donor_ids = itertools.count()

RECORDS: list[tuple[float, str, int, str, float]] = []  # (t, kind, status, code, ms)


def zipf_pick(rng: random.Random, items: list[str]) -> str | None:
    if not items:
        return None
    return rng.choices(items, cum_weights=_CUM_ALL[:len(items)])[0]


def believed_open_pick(rng: random.Random) -> str:
    with _open_lock:
        wish = zipf_pick(rng, _open)
    return wish or zipf_pick(rng, ALL_WISHES)  # everything claimed: keep asking (409s)


def forget_open(wish_id: str) -> None:
    with _open_lock:
        if wish_id in _open:
            _open.remove(wish_id)


def record(kind: str, status: int, code: str, ms: float) -> None:
    RECORDS.append((time.time(), kind, status, code, ms))


def _code(response) -> str:
    try:
        data = response.json()
    except Exception:  # noqa: BLE001 - any non-JSON body
        return ""
    return data.get("code", "") if isinstance(data, dict) else ""


class Donor(FastHttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)
    connection_timeout = 30.0
    network_timeout = 60.0

    def on_start(self) -> None:
        n = next(_donor_ids)
        donors = FIXTURES["donors"]
        me = donors[n % len(donors)]
        self.rng = random.Random(secrets.randbits(64))
        self.auth = {"Authorization": f"Bearer {me['token']}"}
        # A user beyond the number of seeded donors shares a token but holds no seeded claim.
        self.claims: list[str] = list(me["claims"]) if n < len(donors) else []
        self.feed_query: str | None = None
        self.next_cursor: str | None = None
        self.seen: list[str] = []

    # --- the request itself: one place that times it and records the outcome -------------

    def _send(self, kind: str, method: str, path: str, expected: tuple[int, ...] = (200,),
              **kwargs):
        started = time.perf_counter()
        with self.client.request(method, path, name=kind, catch_response=True,
                                 **kwargs) as response:
            ms = (time.perf_counter() - started) * 1000
            status = response.status_code or 0
            code = _code(response) if status >= 400 else ""
            if status == 0:  # no answer: say why (timeout, reset, refused)
                code = type(response.error).__name__ if response.error else "no answer"
            record(kind, status, code, ms)
            if status in expected:
                response.success()
            else:
                response.failure(f"{status} {code}")
            return response

    # --- browsing: 70 ----------------------------------------------------------------------

    @task(15)
    def feed_new_query(self) -> None:
        params = {}
        if self.rng.random() < 0.5:
            params["sort"] = "newest"
        for name, values, share in (("kind", KINDS, 0.3), ("level", LEVELS, 0.25),
                                    ("category", CATEGORIES, 0.15),
                                    ("region", FIXTURES["regions"], 0.3)):
            if self.rng.random() < share:
                params[name] = self.rng.choice(values)
        self.feed_query = "&".join(f"{k}={v}" for k, v in params.items())
        self._feed("feed", self.feed_query)

    @task(15)
    def feed_next_page(self) -> None:
        if self.next_cursor is None:  # nothing to follow: start from the top, unfiltered
            self.feed_query = ""
            self._feed("feed", "")
            return
        query = (self.feed_query + "&" if self.feed_query else "") + f"cursor={self.next_cursor}"
        self._feed("feed (next page)", query)

    def _feed(self, kind: str, query: str) -> None:
        response = self._send(kind, "GET", f"{API}/wishes" + (f"?{query}" if query else ""))
        if response.status_code == 200:
            try:
                data = response.json()
            except ValueError:
                return
            self.next_cursor = data.get("next_cursor")
            self.seen = [item["id"] for item in data.get("items", [])][:20] or self.seen

    @task(25)
    def card(self) -> None:
        if self.seen and self.rng.random() < 0.4:
            wish_id = self.rng.choice(self.seen)  # tapped in the feed just read
        else:
            wish_id = zipf_pick(self.rng, ALL_WISHES)  # shared around: the popular ones
        self._send("card", "GET", f"{API}/wishes/{wish_id}")

    @task(7)
    def stats(self) -> None:
        self._send("stats", "GET", f"{API}/stats")

    @task(5)
    def ledger_entries(self) -> None:
        size = max(1, FIXTURES["ledger_size"])
        start = self.rng.randrange(size)
        self._send("ledger entries", "GET", f"{API}/ledger/entries?start={start}&limit=20")

    @task(3)
    def ledger_checkpoint(self) -> None:
        self._send("ledger checkpoint", "GET", f"{API}/ledger/checkpoint")

    # --- claiming under contention: 20 ------------------------------------------------------

    @task(20)
    def claim(self) -> None:
        self._claim("claim")

    def _claim(self, kind: str) -> None:
        wish_id = believed_open_pick(self.rng)
        response = self._send(
            kind, "POST", f"{API}/wishes/{wish_id}/claims", expected=(201, 409), data=b"{}",
            headers={**self.auth, "Idempotency-Key": secrets.token_urlsafe(16),
                     "Content-Type": "application/json"})
        if response.status_code == 201:
            forget_open(wish_id)
            try:
                self.claims.append(response.json()["id"])
            except (ValueError, KeyError):
                pass
        elif response.status_code == 409 and _code(response) in ("wish_already_claimed",
                                                                  "wish_not_open"):
            forget_open(wish_id)

    # --- proof uploads by donors holding a claim: 10 ----------------------------------------

    @task(10)
    def proof(self) -> None:
        if not self.claims:
            self._claim("claim (no claim held to prove)")
            return
        claim_id = self.claims.pop(0)
        body, content_type = multipart(self.rng.choice(PHOTOS), "已送到受助人家中，老人很高兴")
        key = secrets.token_urlsafe(16)
        headers = {**self.auth, "Idempotency-Key": key, "Content-Type": content_type}
        response = self._send("proof", "POST", f"{API}/claims/{claim_id}/proofs",
                              expected=(201,), data=body, headers=headers)
        if response.status_code == 201 and self.rng.random() < REPLAY_SHARE:
            first = response.json().get("id")
            again = self._send("proof (same key again)", "POST",
                               f"{API}/claims/{claim_id}/proofs", expected=(201,), data=body,
                               headers=headers)
            replayed = (again.status_code == 201 and again.json().get("id") == first
                        and again.headers.get("Idempotent-Replayed") == "true")
            if not replayed:
                record("WRONG replay", again.status_code or 0, "", 0.0)


@events.quitting.add_listener
def _write_records(environment, **_kwargs) -> None:
    RECORD_PATH.write_text(json.dumps({
        "records": RECORDS, "open_left": len(_open), "users": next(_donor_ids)}))
