"""Before a job touches a workspace: who holds it, and what dead runs left in it.

Called under the workspace's OS lock (one process at a time on the host). Every
pending change of another job in the workspace (``reservation.job_changes``) is
either a live reservation (its run can still go on: running, or suspended waiting
for a person) or a leftover of a run that is over (final, deleted). Leftovers are
cleaned here, keeping a person's resolved work shelved; a live reservation is
returned so the caller waits for it without holding the lock.
"""
from __future__ import annotations

from collections.abc import Callable

from . import runs
from . import stages as S
from .reservation import JobChange, job_changes
from .spec import Stage


def clean_run(job: S.Job, left: JobChange, log: Callable[[str], None]) -> S.CleanupReport | None:
    """Clean what run ``left.run_id`` left in the workspace; None when nothing was left."""
    if not left.opened and left.shelved:
        return None  # a shelf kept for a person, with nothing opened: not ours to throw away
    old = S.Job(spec=job.spec, session=job.session, log=log, redact=job.redact, change=left.change,
                run_id=left.run_id)
    return S.cleanup(old, keep_work=runs.person_chose(left.run_id))


def settle(job: S.Job, log: Callable[[str], None]) -> JobChange | None:
    """Clean every dead run's leftovers; return a live holder other than this run, if any."""
    for left in job_changes(job.session, job.spec.client):
        if left.run_id == job.run_id:
            continue
        if not runs.is_over(left.run_id):
            return left
        report = clean_run(job, left, log)
        if report is not None:
            log(f"cleaned what flow run {left.run_id} left behind in workspace {job.spec.client}: {report.sentence()}")
        if report is not None and report.left_opened:
            # Integrating around them would submit the rest as if the job were whole, and
            # reverting them would throw away what the person decided: a person finishes first.
            raise S.JobError(Stage.GET_LATEST_CL, f"workspace {job.spec.client} holds resolves a person began and "
                             f"did not finish, in change {left.change} of flow run {left.run_id}: "
                             f"{', '.join(report.left_opened)}; finish them with 'p4 -c {job.spec.client} "
                             f"resolve -c {left.change}' and submit or shelve that change (or revert it), "
                             "then run this job again")
    return None
