"""What every server process knows of a teach job: records in Django's cache.

A job trains in the process that took its request (trainer/teach/worker.py),
but the page's polls and its cancel may reach any process (nginx spreads
requests, docs/deployment.md): so the job's state lives in the cache, which
is Redis when the site runs several processes (REDIS_URL) and this process's
memory when it runs one. Each key has one writer, so no update is lost
without a lock:

- `teach:job:<id>`: the record (state, queue position, step, loss, error,
  result), written by the process that runs the job;
- `teach:seen:<id>`: when the page last asked (the abandonment clock),
  written by whichever process answers a poll;
- `teach:cancel:<id>`: the page's cancel, read by the running process;
- `teach:owner:<owner>`: the one job a session (or a class) may have, and
  when it was claimed: (job id, claim time).

Records live for RECORD_SECONDS; a job not found is answered with 404.
"""

import time

from django.core.cache import cache as default_cache

RECORD_SECONDS = 3600
# An owner's slot outlives any job that still runs (the queue's wait, then
# the CPU cap); one whose process died is taken over once the job is
# abandoned (see claim_owner).
OWNER_SECONDS = 3600
# A claim whose job has no record yet is still being queued (the record is
# written by worker.submit right after the claim: milliseconds, or a second
# on a loaded host): it holds the slot this long. Treating it as free let a
# second request in that gap overwrite the claim and both jobs ran; holding
# it for ever would lock an owner out after a process died between claim
# and record (its key lives OWNER_SECONDS).
CLAIM_SECONDS = 10.0

# How soon the page should ask again (the answer's `poll_after`): a running
# job or the next one every 0.4 s (a progress bar that moves), one further
# back in the queue every 2 s. A poll costs the server about 6 ms of CPU
# (Daphne, Django's middleware, the view), so 30 learners all asking every
# 0.4 s took half a core from the trainings they waited for.
POLL_SECONDS = 0.4
QUEUED_POLL_SECONDS = 2.0

QUEUED, RUNNING, DONE, FAILED, CANCELLED, EXPIRED = (
    "queued", "running", "done", "failed", "cancelled", "expired")
FINAL_STATES = frozenset({DONE, FAILED, CANCELLED, EXPIRED})


class StatusStore:
    def __init__(self, cache=None, clock=time.time):
        self.cache = cache or default_cache
        self.clock = clock

    # -- keys ------------------------------------------------------------------------

    @staticmethod
    def _job(job_id):
        return f"teach:job:{job_id}"

    @staticmethod
    def _seen(job_id):
        return f"teach:seen:{job_id}"

    @staticmethod
    def _cancel(job_id):
        return f"teach:cancel:{job_id}"

    @staticmethod
    def _owner(owner):
        return f"teach:owner:{owner}"

    # -- records ------------------------------------------------------------------

    def create(self, job_id, *, reader, owner, steps, position=0):
        record = {"job": job_id, "state": QUEUED, "position": position, "step": 0,
                  "steps": steps, "loss": None, "error": None, "result": None,
                  "reader": reader, "owner": owner}
        self.cache.set_many({self._job(job_id): record, self._seen(job_id): self.clock()},
                            RECORD_SECONDS)
        return record

    def get(self, job_id):
        return self.cache.get(self._job(job_id))

    def update(self, job_id, **fields):
        """Change fields of a record (by the process running the job); the record or None."""
        record = self.get(job_id)
        if record is None:
            return None
        record.update(fields)
        self.cache.set(self._job(job_id), record, RECORD_SECONDS)
        return record

    def set_positions(self, positions):
        """{job id: jobs ahead of it} for the queued jobs of this process."""
        if not positions:
            return
        found = self.cache.get_many([self._job(job_id) for job_id in positions])
        changed = {}
        for job_id, position in positions.items():
            record = found.get(self._job(job_id))
            if record is not None and record["position"] != position:
                record["position"] = position
                changed[self._job(job_id)] = record
        if changed:
            self.cache.set_many(changed, RECORD_SECONDS)

    # -- the page's side ---------------------------------------------------------

    def touch(self, job_id):
        self.cache.set(self._seen(job_id), self.clock(), RECORD_SECONDS)

    def seen(self, job_id):
        """When the page last asked for the job (0 when unknown)."""
        return self.cache.get(self._seen(job_id)) or 0.0

    def request_cancel(self, job_id):
        self.cache.set(self._cancel(job_id), True, RECORD_SECONDS)

    def cancel_requested(self, job_id):
        return bool(self.cache.get(self._cancel(job_id)))

    def stop_reason(self, job_id, abandon_seconds):
        """Why the job must stop now ('cancelled' or 'abandoned'), or None."""
        if self.cancel_requested(job_id):
            return "cancelled"
        if self.clock() - self.seen(job_id) > abandon_seconds:
            return "abandoned"
        return None

    # -- one job per owner -------------------------------------------------------

    def claim_owner(self, owner, job_id, abandon_seconds):
        """Make `job_id` the owner's job; (True, None), or (False, the job it already has).

        Claimed with the cache's `add`, which sets only an absent key (atomic
        in Redis and in the local-memory cache), so of two requests at once
        one gets the slot. An earlier job that is over, gone, or whose page
        stopped asking for it (its process may have died with it) gives way
        to the new one; a claim younger than CLAIM_SECONDS whose record is
        not written yet does not.
        """
        key = self._owner(owner)
        claim = (job_id, self.clock())
        if self.cache.add(key, claim, OWNER_SECONDS):
            return True, None
        current = self.cache.get(key)
        holder = self._holder(current, abandon_seconds)
        if holder is not None:
            return False, holder
        record = self.get(current[0]) if current else None
        if record is not None and record["state"] not in FINAL_STATES:
            self.request_cancel(current[0])
        # Taking over a stale slot: the old claim is replaced only if it is
        # still the one just judged (a delete of exactly it, then `add`), so
        # two requests taking over at once do not both win.
        if self.cache.get(key) == current:
            self.cache.delete(key)
        if self.cache.add(key, claim, OWNER_SECONDS):
            return True, None
        return False, self._holder(self.cache.get(key), abandon_seconds) or _pending(
            self.cache.get(key))

    def owner_job(self, owner, abandon_seconds):
        """The owner's job that still holds its slot (its record), or None.

        A cheap look before a request is parsed; claim_owner decides.
        """
        return self._holder(self.cache.get(self._owner(owner)), abandon_seconds)

    def _holder(self, claim, abandon_seconds):
        """The record of the job holding the slot by `claim`, or None when it is free.

        A claim whose record is not written yet holds for CLAIM_SECONDS; its
        stand-in record says so (queued, no steps).
        """
        if not claim:
            return None
        job_id, claimed_at = claim
        record = self.get(job_id)
        if record is None:
            return _pending(claim) if self.clock() - claimed_at <= CLAIM_SECONDS else None
        return record if self._holds(record, abandon_seconds) else None

    def _holds(self, record, abandon_seconds):
        return (record is not None and record["state"] not in FINAL_STATES
                and self.clock() - self.seen(record["job"]) <= abandon_seconds)

    def release_owner(self, owner, job_id):
        key = self._owner(owner)
        current = self.cache.get(key)
        if current and current[0] == job_id:
            self.cache.delete(key)


def _pending(claim):
    """A stand-in record for a claim whose job is being queued."""
    job_id = claim[0] if claim else ""
    return {"job": job_id, "state": QUEUED, "position": 0, "step": 0, "steps": 0,
            "loss": None, "error": None, "result": None}


def public(record, cancel_requested=False):
    """The record as the API answers it (no owner keys)."""
    state = record["state"]
    if cancel_requested and state not in FINAL_STATES:
        # Cancelled by the page; the running process stops at its next step.
        state = CANCELLED
    # position: the jobs ahead of this one in its process's queue (0: next,
    # and 0 once it runs).
    position = record["position"] if state == QUEUED else 0
    answer = {"job": record["job"], "state": state, "position": position,
              "step": record["step"], "steps": record["steps"], "loss": record["loss"]}
    if state not in FINAL_STATES:
        answer["poll_after"] = QUEUED_POLL_SECONDS if position > 0 else POLL_SECONDS
    if state == FAILED:
        answer["error"] = record["error"]
    if state in (DONE, EXPIRED) and record["result"] is not None:
        answer["result"] = record["result"]
    return answer
