"""Export tasks, run in a real flow against the sandbox.

Each test's project gets an organization of its own: export jobs are capped per organization, so
jobs of other tests must not take this test's slots.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from prefect_iterable.api.errors import (
    BadParams,
    InputValidationError,
    NotFound,
    PermissionDenied,
    UnknownEmailError,
)
from prefect_iterable.blocks import IterableCredentials
from prefect_iterable.sandbox.data import (
    User,
    advance,
    export_settings,
    exports,
    generated_record,
    start_job,
    users,
)
from prefect_iterable.tasks.exports import (
    ExportTooLarge,
    cancel_export,
    download_export_file,
    export_data_csv,
    export_data_json,
    export_user_events,
    iter_export_files,
    list_export_files,
    list_export_jobs,
    start_export,
)
from tests._answers import AnswerServer
from tests._seeds import EXPORT_END, EXPORT_START, export_spec

pytestmark = pytest.mark.own_organization
START, END = EXPORT_START, EXPORT_END


def _requests(sandbox, project, action):
    return sandbox.state.requests(action, project_id=project.id)


def _check_summary(summary, path: Path) -> bytes:
    data = path.read_bytes()
    assert summary.path == str(path)
    assert summary.bytes == len(data)
    assert summary.sha256 == hashlib.sha256(data).hexdigest()
    return data


class TestExportDataCsv:
    def test_streams_the_window_to_a_file(
        self, run_in_flow, credentials, sandbox, project, tmp_path
    ):
        target = tmp_path / "opens" / "emailOpen.csv"
        summary = run_in_flow(
            export_data_csv,
            "emailOpen",
            start_date_time=START,
            end_date_time=END,
            only_fields=["createdAt", "email", "campaignId"],
            destination=str(target),
            credentials=credentials,
        )
        rows = list(csv.reader(io.StringIO(_check_summary(summary, target).decode())))
        assert rows[0] == ["createdAt", "email", "campaignId"]
        assert summary.records == len(rows) - 1 == 120  # 2 hours at 60 rows per hour
        first_slot = int(START.timestamp() * 60 / 3600)
        expected = generated_record(project.id, "emailOpen", first_slot, 60)
        assert rows[1] == [expected["createdAt"], expected["email"], str(expected["campaignId"])]
        [entry] = _requests(sandbox, project, "ITERABLE_EXPORT_DATA_CSV")
        assert entry.query == {
            "dataTypeName": ["emailOpen"],
            "startDateTime": ["2026-01-05 00:00:00 +00:00"],
            "endDateTime": ["2026-01-05 02:00:00 +00:00"],
            "onlyFields": ["createdAt,email,campaignId"],
        }

    def test_a_second_export_of_the_window_is_identical(self, run_in_flow, credentials, tmp_path):
        summaries = [
            run_in_flow(
                export_data_csv,
                "purchase",
                start_date_time=START,
                end_date_time=END,
                delimiter=";",
                destination=str(tmp_path / f"run{n}.csv"),
                credentials=credentials,
            )
            for n in range(2)
        ]
        assert summaries[0].sha256 == summaries[1].sha256
        header = (tmp_path / "run0.csv").read_text().splitlines()[0]
        assert header.split(";")[:4] == ["createdAt", "email", "userId", "id"]

    @pytest.mark.parametrize(
        "window",
        [
            {"date_range": "Today", "start_date_time": START, "end_date_time": END},
            {"start_date_time": START},
            {"start_date_time": END, "end_date_time": START},
            {"end_date_time": END},
            {"date_range": "LastWeek"},
        ],
    )
    def test_rejects_a_bad_window_before_sending(
        self, run_in_flow, credentials, sandbox, project, tmp_path, window
    ):
        with pytest.raises(InputValidationError):
            export_data_csv.fn(
                "emailOpen", **window, destination=str(tmp_path / "x.csv"), credentials=credentials
            )
        assert sandbox.state.requests(project_id=project.id) == []


class TestExportDataJson:
    def test_streams_ndjson_filtered_by_campaign(
        self, run_in_flow, credentials, sandbox, project, tmp_path
    ):
        target = tmp_path / "clicks.json"
        summary = run_in_flow(
            export_data_json,
            "emailClick",
            start_date_time=START,
            end_date_time=END,
            campaign_id=105,
            omit_fields=["userAgent", "messageTypeId"],
            destination=str(target),
            credentials=credentials,
        )
        records = [json.loads(line) for line in _check_summary(summary, target).splitlines()]
        first_slot = int(START.timestamp() * 60 / 3600)
        expected = [
            r
            for r in (
                generated_record(project.id, "emailClick", s, 60)
                for s in range(first_slot, first_slot + 120)
            )
            if r["campaignId"] == 105
        ]
        assert summary.records == len(records) == len(expected) > 0
        assert [r["messageId"] for r in records] == [r["messageId"] for r in expected]
        assert all("messageTypeId" not in r and r["url"].startswith("https://") for r in records)
        [entry] = _requests(sandbox, project, "ITERABLE_EXPORT_DATA_JSON")
        assert entry.query["campaignId"] == ["105"]
        assert entry.query["omitFields"] == ["userAgent,messageTypeId"]

    def test_user_export_includes_real_profiles(self, run_in_flow, credentials, project, tmp_path):
        users(project).add(
            User(email="ada@example.com", user_id=None, data_fields={"tier": "gold"})
        )
        export_settings(project)["rows_per_hour"] = 1
        target = tmp_path / "users.json"
        summary = run_in_flow(
            export_data_json,
            "user",
            date_range="Today",
            destination=str(target),
            credentials=credentials,
        )
        records = [json.loads(line) for line in _check_summary(summary, target).splitlines()]
        ada = next(r for r in records if r.get("email") == "ada@example.com")
        assert ada["tier"] == "gold"
        assert len(records) == summary.records

    def test_rejects_an_unknown_data_type_before_sending(
        self, run_in_flow, credentials, sandbox, project, tmp_path
    ):
        with pytest.raises(InputValidationError):
            export_data_json.fn(
                "emailOpened",
                date_range="Today",
                destination=str(tmp_path / "x.json"),
                credentials=credentials,
            )
        assert sandbox.state.requests(project_id=project.id) == []


class TestExportUserEvents:
    def test_streams_one_users_events(self, run_in_flow, credentials, sandbox, project, tmp_path):
        users(project).add(User(email="ada@example.com", user_id=None))
        export_settings(project)["user_events"] = 8
        target = tmp_path / "ada.json"
        summary = run_in_flow(
            export_user_events,
            email="ada@example.com",
            include_custom_events=True,
            destination=str(target),
            credentials=credentials,
        )
        events = [json.loads(line) for line in _check_summary(summary, target).splitlines()]
        assert summary.records == len(events) == 8
        assert {e["email"] for e in events} == {"ada@example.com"}
        assert sum(e["eventType"] == "customEvent" for e in events) == 2
        [entry] = _requests(sandbox, project, "ITERABLE_EXPORT_USER_EVENTS")
        assert entry.query == {"email": ["ada@example.com"], "includeCustomEvents": ["true"]}

    def test_an_unknown_user_is_refused(self, run_in_flow, credentials, tmp_path):
        with pytest.raises(UnknownEmailError):
            run_in_flow(
                export_user_events,
                email="nobody@example.com",
                destination=str(tmp_path / "x.json"),
                credentials=credentials,
            )

    @pytest.mark.parametrize("who", [{}, {"email": "not-an-email"}])
    def test_rejects_a_bad_identity_before_sending(
        self, run_in_flow, credentials, sandbox, project, tmp_path, who
    ):
        with pytest.raises(InputValidationError):
            export_user_events.fn(
                **who, destination=str(tmp_path / "x.json"), credentials=credentials
            )
        assert sandbox.state.requests(project_id=project.id) == []


class TestStartExport:
    def test_starts_a_job(self, run_in_flow, credentials, sandbox, project):
        result = run_in_flow(
            start_export,
            "emailSend",
            "text/csv",
            start_date_time=START,
            end_date_time=END,
            only_fields=["email", "createdAt"],
            delimiter="|",
            credentials=credentials,
        )
        job = exports(project).jobs[result.job_id]
        assert (job.spec.data_type, job.spec.fields, job.spec.delimiter) == (
            "emailSend",
            ["createdAt", "email"],
            "|",
        )
        [entry] = _requests(sandbox, project, "ITERABLE_START_EXPORT")
        assert entry.body == {
            "dataTypeName": "emailSend",
            "outputFormat": "text/csv",
            "startDateTime": "2026-01-05 00:00:00 +00:00",
            "endDateTime": "2026-01-05 02:00:00 +00:00",
            "onlyFields": "email,createdAt",
            "delimiter": "|",
        }

    @pytest.mark.parametrize(
        "args",
        [
            {"output_format": "application/x-json-stream", "delimiter": ";"},
            {"output_format": "text/plain"},
            {"output_format": "text/csv", "start_date_time": END, "end_date_time": START},
            {"output_format": "text/csv", "only_fields": []},
        ],
    )
    def test_rejects_bad_arguments_before_sending(
        self, run_in_flow, credentials, sandbox, project, args
    ):
        with pytest.raises(InputValidationError):
            start_export.fn("emailSend", **args, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []

    def test_a_job_completes_and_its_files_download(
        self, run_in_flow, credentials, client, sandbox, project, fast_jobs, tmp_path
    ):
        job_id = run_in_flow(
            start_export,
            "emailOpen",
            "text/csv",
            start_date_time=START,
            end_date_time=END,
            credentials=credentials,
        ).job_id
        listing = run_in_flow(list_export_files, job_id, credentials=credentials)
        assert (listing.job_id, listing.job_state, listing.export_truncated) == (
            job_id,
            "Completed",
            False,
        )
        assert len(listing.files) > 3
        parts = []
        for n, export_file in enumerate(listing.files):
            summary = download_export_file(export_file.url, str(tmp_path / f"{n}.csv"))
            data = _check_summary(summary, tmp_path / f"{n}.csv")
            assert len(data) <= fast_jobs["file_size_bytes"]
            parts.append(data.decode())
        # The job's files, headers dropped, are exactly the synchronous export of its window.
        with client.stream(
            "ITERABLE_EXPORT_DATA_CSV",
            data_type_name="emailOpen",
            start_date_time="2026-01-05 00:00:00 +00:00",
            end_date_time="2026-01-05 02:00:00 +00:00",
        ) as body:
            whole = b"".join(body.iter_bytes()).decode()
        header = whole.split("\n", 1)[0] + "\n"
        assert all(part.startswith(header) for part in parts)
        assert header + "".join(p.removeprefix(header) for p in parts) == whole
        assert len(whole.splitlines()) == 1 + 600  # 2 hours at 300 rows per hour
        downloads = _requests(sandbox, project, "EXPORT_FILE_DOWNLOAD")
        assert [e.status for e in downloads] == [200] * len(listing.files)

    def test_truncate_next_stops_the_job_early(
        self, run_in_flow, credentials, sandbox, project, fast_jobs
    ):
        fast_jobs["truncate_next"] = 1
        job = start_job(sandbox, project, export_spec(project, "purchase", "text/csv", 300))
        listing = run_in_flow(list_export_files, job.id, credentials=credentials)
        assert (listing.job_state, listing.export_truncated) == ("Completed", True)
        full = export_spec(project, "purchase", "text/csv", 300)
        assert job.files[-1].slots[1] < full.end_slot
        assert fast_jobs["truncate_next"] == 0


class TestListExportJobs:
    def test_at_most_four_run_per_organization(
        self, run_in_flow, credentials, sandbox, project, make_project
    ):
        _, sibling = make_project(organization_id=project.organization_id)
        for p in (project, sibling):
            export_settings(p).update(
                rows_per_hour=3600, bytes_per_second=1_000, start_delay_seconds=0
            )
        for _ in range(2):
            start_job(sandbox, sibling, export_spec(sibling, "emailSend", "text/csv"))
        mine = [
            start_job(sandbox, project, export_spec(project, "emailSend", "text/csv"))
            for _ in range(3)
        ]
        result = run_in_flow(list_export_jobs, credentials=credentials)
        assert [j.id for j in result.jobs] == sorted((j.id for j in mine), reverse=True)
        states = {j.id: j.job_state for j in result.jobs}
        assert sorted(states.values()) == ["Enqueued", "Running", "Running"]
        assert states[mine[-1].id] == "Enqueued"  # first come, first served
        running = run_in_flow(list_export_jobs, job_state="running", credentials=credentials)
        assert {j.id for j in running.jobs} == {j.id for j in mine[:2]}
        entries = _requests(sandbox, project, "ITERABLE_LIST_EXPORT_JOBS")
        assert [e.query for e in entries] == [{}, {"jobState": ["running"]}]

    def test_rejects_an_unknown_state_before_sending(
        self, run_in_flow, credentials, sandbox, project
    ):
        with pytest.raises(InputValidationError):
            list_export_jobs.fn(job_state="started", credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestListExportFiles:
    def test_start_after_pages_over_the_files(self, credentials, sandbox, project, fast_jobs):
        fast_jobs.update(files_per_page=3, file_size_bytes=30_000)  # ~6 files: 3 requests
        job = start_job(
            sandbox, project, export_spec(project, "emailOpen", "application/x-json-stream", 300)
        )
        assert len(job.files) > 3
        files = list(iter_export_files(job.id, credentials))
        assert [f.file for f in files] == [f.name for f in job.files]
        assert all(f.file.endswith(".json") for f in files)
        # A request the limiter refused (429, then retried) is logged too: count answered ones.
        pages = [
            e for e in _requests(sandbox, project, "ITERABLE_LIST_EXPORT_FILES") if e.status == 200
        ]
        # One call per page of 3, each after the previous page's last file, then an empty page.
        expected_after = [None] + [
            job.files[min(i + 2, len(job.files) - 1)].name for i in range(0, len(job.files), 3)
        ]
        assert [e.query.get("startAfter", [None])[0] for e in pages] == expected_after

    def test_an_expired_url_answers_403(
        self, run_in_flow, credentials, sandbox, project, fast_jobs, tmp_path
    ):
        fast_jobs["url_ttl_seconds"] = 0
        job = start_job(sandbox, project, export_spec(project, "emailOpen", "text/csv", 300))
        listing = run_in_flow(list_export_files, job.id, credentials=credentials)
        with pytest.raises(PermissionDenied, match="expired"):
            download_export_file(listing.files[0].url, str(tmp_path / "late.csv"))
        [entry] = _requests(sandbox, project, "EXPORT_FILE_DOWNLOAD")
        assert entry.status == 403
        with pytest.raises(PermissionDenied):
            download_export_file(listing.files[0].url.replace("-", "-x", 1), str(tmp_path / "x"))

    def test_an_unknown_job_is_not_found(self, run_in_flow, credentials):
        with pytest.raises(NotFound):
            run_in_flow(list_export_files, 987654, credentials=credentials)

    def test_rejects_a_bad_job_id_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            list_export_files.fn(0, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestCancelExport:
    def test_cancels_a_running_job_and_frees_its_slot(
        self, run_in_flow, credentials, sandbox, project, fast_jobs
    ):
        fast_jobs.update(bytes_per_second=1_000, max_running=1)
        first = start_job(sandbox, project, export_spec(project, "emailOpen", "text/csv", 300))
        second = start_job(sandbox, project, export_spec(project, "emailOpen", "text/csv", 300))
        advance(sandbox, project.organization_id)
        assert (first.state, second.state) == ("Running", "Enqueued")
        result = run_in_flow(cancel_export, first.id, credentials=credentials)
        assert result.code == "Success"
        assert (first.state, second.state) == ("Cancelled", "Running")
        [entry] = _requests(sandbox, project, "ITERABLE_CANCEL_EXPORT")
        assert (entry.method, entry.path) == ("DELETE", f"/api/export/{first.id}")
        listed = run_in_flow(list_export_jobs, job_state="cancelled", credentials=credentials)
        assert [j.id for j in listed.jobs] == [first.id]

    def test_a_finished_job_cannot_be_cancelled(
        self, run_in_flow, credentials, sandbox, project, fast_jobs
    ):
        job = start_job(sandbox, project, export_spec(project, "emailOpen", "text/csv", 300))
        with pytest.raises(BadParams, match="Completed"):
            run_in_flow(cancel_export, job.id, credentials=credentials)

    def test_rejects_a_bad_job_id_before_sending(self, run_in_flow, credentials, sandbox, project):
        with pytest.raises(InputValidationError):
            cancel_export.fn(-3, credentials=credentials)
        assert sandbox.state.requests(project_id=project.id) == []


class TestExportsWithoutDestination:
    """Without a destination the three synchronous exports return their records."""

    def test_csv_rows_are_the_files_rows(self, run_in_flow, credentials, tmp_path):
        window = {"start_date_time": START, "end_date_time": END, "delimiter": ";"}
        rows = run_in_flow(export_data_csv, "emailOpen", **window, credentials=credentials)
        target = tmp_path / "opens.csv"
        run_in_flow(
            export_data_csv, "emailOpen", **window, destination=str(target), credentials=credentials
        )
        with target.open(newline="") as written:
            assert rows == list(csv.DictReader(written, delimiter=";"))
        assert len(rows) == 120 and "email" in rows[0]

    def test_json_records_are_parsed(self, run_in_flow, credentials, project):
        users(project).add(User(email="ada@example.com", user_id=None))
        export_settings(project)["user_events"] = 8
        events = run_in_flow(export_user_events, email="ada@example.com", credentials=credentials)
        assert len(events) == 8 and {e["email"] for e in events} == {"ada@example.com"}

    def test_more_than_the_limit_fails_by_name(
        self, run_in_flow, credentials, monkeypatch, sandbox, project
    ):
        monkeypatch.setattr("prefect_iterable.tasks._exported.RECORDS_LIMIT", 50)
        with pytest.raises(ExportTooLarge, match="destination.*start_export"):
            run_in_flow(
                export_data_json,
                "emailOpen",
                start_date_time=START,
                end_date_time=END,
                credentials=credentials,
            )
        assert len(_requests(sandbox, project, "ITERABLE_EXPORT_DATA_JSON")) == 1

    def test_quoted_cells_keep_newlines_and_delimiters(self, run_in_flow):
        body = 'email|note\r\na@example.com|"two\r\nlines | and a pipe"\r\nb@example.com|\r\n'
        with AnswerServer() as server:
            server.answer(body, content_type="text/csv")
            rows = run_in_flow(
                export_data_csv,
                "user",
                date_range="Today",
                delimiter="|",
                credentials=IterableCredentials(
                    api_key="itbl-test-" + "0" * 32,
                    base_url=server.url,
                    permissions=["read"],
                    timeout=5.0,
                ),
            )
        assert rows == [
            {"email": "a@example.com", "note": "two\r\nlines | and a pipe"},
            {"email": "b@example.com", "note": ""},
        ]
