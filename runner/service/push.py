"""The push side of the server in one object: the scheduler, object-store triggers and
topics over one Runner, with their stores: schedules.db and push.db in the data directory, or
the cluster's tables (the push store is the Runner's State's, storage/state.py).

The edges (gRPC servicers in grpc/push.py, HTTP routes in http/push_api.py) and `runner
serve` share one `Push`; `start()` starts the scheduler thread, `close()` stops it and closes
the schedule store (before the Runner closes: the scheduler queues through it; the push store
closes with the Runner's State).
"""

from __future__ import annotations

import time
from typing import Callable

from runner.schedules.scheduler import Scheduler
from runner.storage.events import DeadLetter
from runner.storage.schedules import SQLiteScheduleStore
from runner.topics.service import Topics
from runner.triggers.service import Triggers


class Push:
    def __init__(self, runner, *, clock: Callable[[], float] = time.time) -> None:
        self.runner = runner
        state = getattr(runner, "state", None)
        if state is not None and state.shared:
            # A cluster: one schedule table for every node; each slot fires once (the queue's
            # delivery keys), and a dead node's schedules keep firing from the others.
            from runner.storage.postgres.schedules import PostgresScheduleStore

            self.schedule_store = PostgresScheduleStore(state.url)
        else:
            self.schedule_store = SQLiteScheduleStore(runner.data_dir)
        # Triggers and topics: the Runner's State's (push.db, or shared by a cluster); the
        # State owns and closes it.
        self.push_store = runner.state.push
        self.scheduler = Scheduler(self.schedule_store, runner.invoke_async, clock=clock,
                                   dead_letter=self._dead_letter)
        self.triggers = Triggers(self.push_store, runner)
        self.topics = Topics(self.push_store, runner)

    def _dead_letter(self, function: str, request_id: str, payload: bytes, record: dict) -> None:
        self.runner.events.add_dead_letter(
            DeadLetter(request_id, function, "", payload, record, time.time()))

    def start(self) -> None:
        self.scheduler.start()

    def close(self) -> None:
        self.scheduler.close()
        self.schedule_store.close()
