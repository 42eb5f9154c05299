"""Redis stopped and restarted empty (or flushed) in the middle of a claim storm.

Redis is a doorbell here: claims, deadlines and outbox rows live in PostgreSQL. While Redis is
gone a claim must still succeed (or fail cleanly); once it is back, the periodic sweeper and relay
find everything whose doorbell was lost. Only a redis-server of this test's own is stopped.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
import requests
from rq import Worker

from tests.faults.conftest import Storm, audit, live_settings, make_world, scalar, wait_for

pytestmark = pytest.mark.usefixtures("needs_postgres")

SLA = 5          # CLAIM_SLA_SECONDS on the live processes
SWEEP = 1        # SLA_CHECK_SECONDS and NOTIFY_RELAY_SECONDS


@pytest.mark.parametrize("fault", ["restart", "flush"])
def test_claim_storm_survives_redis_going_away(app, actors, fake_wechat, own_redis,
                                               own_processes, fault):
    wish_ids, donors = make_world(app, actors, n_wishes=24, n_donors=12)
    settings = live_settings(app, fake_wechat, CLAIM_SLA_SECONDS=SLA, SLA_CHECK_SECONDS=SWEEP,
                             NOTIFY_RELAY_SECONDS=SWEEP)
    base = own_processes.server(workers=2, threads=8, **settings)
    own_processes.worker(**settings)
    wait_for(lambda: Worker.count(connection=own_redis.client()), 30, "the worker to listen")

    storm = Storm(base, donors, wish_ids).start()
    time.sleep(1.5)
    down_at, down_wall = time.monotonic(), datetime.now(timezone.utc)
    if fault == "restart":
        own_redis.stop()      # SHUTDOWN NOSAVE: every connection drops, nothing is kept
        time.sleep(3)
        own_redis.start()     # same port, empty
    else:
        own_redis.flush()     # every queued and scheduled job, every periodic key: gone
    up_at, up_wall = time.monotonic(), datetime.now(timezone.utc)
    time.sleep(2)
    storm.stop()

    counts = storm.check_clean()
    during = storm.counts(since=down_at) - storm.counts(since=up_at)
    print(f"\n[{fault}] answers by (kind, status, code): {dict(counts)}")
    print(f"[{fault}] while Redis was away ({up_at - down_at:.1f}s): {dict(during)}")
    made = counts[("claim", 201, None)]
    assert made >= 20, counts
    assert sum(n for (kind, status, _), n in during.items() if kind == "claim"
               and status == 201) or fault == "flush", "no claim succeeded while Redis was down"

    # Everything the storm left behind is picked up: each claim expires on time (the DB sweeper,
    # rung again by the ticker once Redis answers), each outbox row is relayed.
    wait_for(lambda: not scalar(app, "SELECT count(*) FROM claims WHERE status = 'active'"),
             SLA + 20, "every storm claim to expire", poll=0.2)
    wait_for(lambda: not scalar(app, "SELECT count(*) FROM outbox WHERE status = 'pending'"),
             30, "every outbox row to be relayed", poll=0.2)
    recovered = time.monotonic() - up_at
    # Claims made after Redis was back had their doorbells; claims made while it was away (or
    # whose jobs were flushed) expire through the sweeper: all within a sweep of their deadline.
    late = scalar(app, "SELECT max(extract(epoch FROM ended_at - due_at)) FROM claims "
                       "WHERE status = 'expired' AND due_at > :up", up=up_wall)
    lost = scalar(app, "SELECT count(*) FROM claims WHERE claimed_at BETWEEN :down AND :up",
                  down=down_wall, up=up_wall)
    print(f"[{fault}] {lost} claims made while Redis was away; all expired and relayed "
          f"{recovered:.1f}s after it was back; worst lateness after it was back {late:.2f}s")
    assert late is not None and late <= SWEEP + 4.0, late  # was 10 s+ (starved sweep)

    # New claims work, with fresh doorbells.
    session = requests.Session()
    for donor, wish_id in zip(donors[:5], wish_ids):
        res = session.post(f"{base}/api/v1/wishes/{wish_id}/claims", timeout=30,
                           headers={**donor.headers, "Idempotency-Key": f"after-{wish_id}"})
        assert res.status_code == 201, res.text
    wait_for(lambda: not scalar(app, "SELECT count(*) FROM outbox WHERE status = 'pending'"),
             15, "the new claims' messages to be relayed", poll=0.2)
    audit(app)
