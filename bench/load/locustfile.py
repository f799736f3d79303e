"""50 clients logging and editing interactions through the JSON API (run by bench/load/run.py).

Each simulated client holds an API token of an advocate, logs interactions, edits its own ones
(sending the version it last saw), and now and then edits one of a few interactions that every
client shares: there two clients often send the same version and one of them must get 409.

Every acknowledged write (2xx) is written to LOAD_ACKS_FILE at the end, so the runner can check
that each one is in the database and in the audit trail. A 409 on a shared record is the correct
answer to a stale version, not a failure; any other non-2xx answer is a failure.
"""

import itertools
import json
import os
import random
import threading
import time

from locust import FastHttpUser, events, task

SETUP = json.loads(open(os.environ["LOAD_SETUP_FILE"], encoding="utf-8").read())
ACKS_FILE = os.environ["LOAD_ACKS_FILE"]
THINK_SECONDS = float(os.environ.get("LOAD_THINK_SECONDS", "0"))

acks: list[dict] = []
conflicts = itertools.count()
latencies: list[float] = []  # of writes, in ms
_lock = threading.Lock()
_clients = itertools.count()

BASE = {
    "occurred_on": "2026-03-14",
    "format": "focus_group",
    "purpose": "Hear what participants need from the trial visit schedule and its travel burden",
    "purpose_shared_on": "2026-03-01",
    "lifecycle_stage": "phase_2",
    "patient_participants": 6,
    "caregiver_participants": 1,
    "sponsor_staff": 2,
    "selection_method": "co_created_procedure",
    "protocol_followed": True,
    "materials_co_created": True,
    "facilitator": "third_party",
    "modality": "video",
    "venue_type": "virtual",
}


def record(kind: str, answer: dict, marker: str, started: float) -> None:
    with _lock:
        acks.append({"kind": kind, "id": answer["id"], "version": answer["version"],
                     "title": marker, "at": started})


@events.request.add_listener
def remember_latency(request_type, name, response_time, exception, **_kwargs):
    if request_type in ("POST", "PATCH") and exception is None:
        latencies.append(response_time)


@events.test_stop.add_listener
def write_acks(**_kwargs):
    with open(ACKS_FILE, "w", encoding="utf-8") as out:
        json.dump({"acks": acks, "conflicts": next(conflicts), "write_latencies_ms": latencies},
                  out)


class Advocate(FastHttpUser):
    # Closed loop: each client sends its next request as soon as the last one is answered,
    # unless LOAD_THINK_SECONDS asks for a pause between requests.
    def wait_time(self):
        return random.uniform(0, 2 * THINK_SECONDS) if THINK_SECONDS else 0

    def on_start(self):
        self.number = next(_clients)
        token = SETUP["tokens"][self.number % len(SETUP["tokens"])]
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.mine: dict[int, int] = {}  # id -> last acknowledged version
        self.shared_seen: dict[int, int] = {}
        self.sequence = itertools.count(1)

    def marker(self) -> str:
        return f"Load client {self.number} write {next(self.sequence)}"

    @task(1)
    def log_interaction(self):
        title = self.marker()
        body = dict(BASE, title=title, partnership_id=SETUP["partnership_id"],
                    patient_participants=random.randint(1, 12))
        started = time.time()
        with self.client.post("/api/v1/interactions", json=body, headers=self.headers,
                              name="POST /interactions", catch_response=True) as answer:
            if answer.status_code != 201:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                return
            data = answer.json()
            record("create", data, title, started)
            self.mine[data["id"]] = data["version"]

    @task(4)
    def edit_own_interaction(self):
        if not self.mine:
            return self.log_interaction()
        interaction_id = random.choice(list(self.mine))
        self.patch(interaction_id, self.mine[interaction_id], shared=False)

    @task(1)
    def edit_shared_interaction(self):
        interaction_id = random.choice(SETUP["shared_ids"])
        version = self.shared_seen.get(interaction_id)
        if version is None:
            with self.client.get(f"/api/v1/interactions/{interaction_id}", headers=self.headers,
                                 name="GET /interactions/[shared]",
                                 catch_response=True) as answer:
                if answer.status_code != 200:
                    answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                    return
                version = answer.json()["version"]
        self.patch(interaction_id, version, shared=True)

    def patch(self, interaction_id: int, version: int, shared: bool):
        title = self.marker()
        body = {"title": title, "patient_participants": random.randint(1, 12),
                "version": version}
        name = "PATCH /interactions/[shared]" if shared else "PATCH /interactions/[own]"
        started = time.time()
        with self.client.patch(f"/api/v1/interactions/{interaction_id}", json=body,
                               headers=self.headers, name=name, catch_response=True) as answer:
            if answer.status_code == 409 and shared:
                next(conflicts)
                self.shared_seen.pop(interaction_id, None)  # read it again next time
                answer.success()
                return
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                if not shared:
                    self.mine.pop(interaction_id, None)  # its state is unknown now: leave it
                return
            data = answer.json()
            record("shared-update" if shared else "update", data, title, started)
            if shared:
                self.shared_seen[interaction_id] = data["version"]
            else:
                self.mine[interaction_id] = data["version"]
