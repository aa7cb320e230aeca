"""The sandbox's export jobs, driven with explicit clocks (no waiting): files appear while a job
runs, and the fault knobs the export flows' tests rely on behave as they say."""

from __future__ import annotations

import pytest

from prefect_iterable.sandbox.data import advance, start_job
from tests._seeds import export_spec

pytestmark = pytest.mark.own_organization


class TestExportJobs:
    def test_files_appear_while_the_job_runs(self, sandbox, project, fast_jobs):
        fast_jobs["bytes_per_second"] = 10_000
        job = start_job(sandbox, project, export_spec(project, "emailOpen", "text/csv", 300))
        t0 = job.created
        advance(sandbox, project.organization_id, t0 + job.files[1].work_end + 0.001)
        assert job.state == "Running"
        assert [f.name for f in job.ready_files(t0 + job.files[1].work_end + 0.001)] == [
            f.name for f in job.files[:2]
        ]
        advance(sandbox, project.organization_id, t0 + job.work + 0.01)
        assert job.state == "Completed"

    def test_fail_next_ends_the_job_failed_halfway(self, sandbox, project, fast_jobs):
        fast_jobs.update(bytes_per_second=10_000, fail_next=True)
        job = start_job(sandbox, project, export_spec(project, "emailOpen", "text/csv", 300))
        advance(sandbox, project.organization_id, job.created + job.work + 1)
        assert job.state == "Failed" and job.ended_at is not None
        assert 0 < len(job.ready_files(job.ended_at)) < len(job.files)
        assert fast_jobs["fail_next"] is False

    def test_restart_next_requeues_once_keeping_progress(self, sandbox, project, fast_jobs):
        fast_jobs.update(bytes_per_second=10_000, restart_next=1, restart_seconds=0.5)
        job = start_job(sandbox, project, export_spec(project, "emailOpen", "text/csv", 300))
        halfway = job.created + job.work / 2 + 0.01
        advance(sandbox, project.organization_id, halfway)
        assert job.state == "Enqueued"
        kept = job.ready_files(halfway)
        assert kept and len(kept) < len(job.files)
        advance(sandbox, project.organization_id, halfway + 0.5)
        assert job.state == "Running"
        assert job.ready_files(halfway + 0.5)[: len(kept)] == kept
        advance(sandbox, project.organization_id, job.created + job.work + 1)
        assert job.state == "Completed"
