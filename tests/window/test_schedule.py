"""The daemon's scheduler as APScheduler's documentation intends: a late run still runs
until the window's cut-off, missed runs coalesce into one, and the jobs live in memory
(made from the settings at each start; a missed window is the daemon's catch-up)."""

from __future__ import annotations

from apscheduler.jobstores.memory import MemoryJobStore

from config.settings import load
from engine.shell.daemon import Daemon
from engine.shell.schedule import grace_seconds


def test_window_jobs_run_late_until_the_cutoff_and_coalesce(tmp_path):
    settings = load(env={"PIES_DATA_DIR": str(tmp_path)})
    sched = Daemon(settings).schedule()
    sched.start(paused=True)                 # jobs take the scheduler's defaults when it starts
    try:
        jobs = {j.id: j for j in sched.get_jobs()}
    finally:
        sched.shutdown(wait=False)
    assert settings.windows
    for w in settings.windows:
        job = jobs[f"window:{w.name}"]
        assert job.misfire_grace_time == grace_seconds(w) > 60          # until the cut-off, not a second
        assert job.coalesce and job.max_instances == 1
        assert str(job.trigger.timezone) == w.timezone
    assert {"heartbeat", "watch-policies"} <= set(jobs)
    assert all(j.coalesce for j in jobs.values())
    assert isinstance(sched._jobstores["default"], MemoryJobStore)      # noqa: SLF001 - nothing outside the migrations
