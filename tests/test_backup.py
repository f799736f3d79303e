"""Backups and restores: the data comes back as it was, and the audit chain is verified."""

import hashlib
import io
import json
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest
from flask import current_app
from sqlalchemy import func, select

from governance import create_app
from governance.attachments.services import attach_file
from governance.audit import AuditEvent, verify_chain
from governance.auth import services as accounts
from governance.extensions import db
from governance.interactions import services
from governance.interactions.models import Interaction
from governance.organisations.models import Organisation
from governance.reports.services import DEFAULT_METHODOLOGY

from .conftest import PASSWORD, login, make_config, stored_hashes
from .test_import import csv_bytes, interaction_row

PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
DATABASE_MEMBER = re.compile(r"database/governance\.(sqlite|pgdump)")


@pytest.fixture
def app_config():
    return {"JOBS_INLINE": True}


def snapshot() -> dict:
    return {
        "interactions": sorted(db.session.execute(
            select(Interaction.id, Interaction.title, Interaction.version)).all()),
        "organisations": sorted(db.session.scalars(select(Organisation.name)).all()),
        "audit_events": db.session.scalar(select(func.count(AuditEvent.id))),
        "chain_head": db.session.scalar(
            select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)),
    }


def test_restore_brings_back_the_data_as_at_backup_time_with_an_intact_audit_chain(
        runner, tmp_path, make_interaction, make_org, compliance_user):
    interaction = make_interaction(title="Advisory board on trial burden")
    before = snapshot()
    db.session.commit()
    backup_file = tmp_path / "backups" / "governance.backup"

    made = runner.invoke(args=["backup", str(backup_file)])
    assert made.exit_code == 0, made.output
    assert f"{before['audit_events']} audit events" in made.output

    services.update_interaction(interaction, {"title": "Changed after the backup"},
                                compliance_user)
    make_org("Created after the backup", "other")
    db.session.commit()
    assert snapshot() != before
    db.session.commit()  # end the read: outside a request SQLite transactions take the lock

    refused = runner.invoke(args=["restore", str(backup_file)])
    assert refused.exit_code != 0
    assert "already holds records" in refused.output and "--force" in refused.output
    assert snapshot()["organisations"] != before["organisations"]  # nothing was replaced
    db.session.commit()

    restored = runner.invoke(args=["restore", "--force", str(backup_file)])
    assert restored.exit_code == 0, restored.output
    assert f"Audit chain intact: {before['audit_events']} events verified." in restored.output
    db.session.remove()
    assert snapshot() == before
    assert verify_chain().intact


def test_a_backup_restores_into_an_empty_database(app, runner, tmp_path, make_interaction):
    make_interaction(title="Kept in the backup")
    expected = snapshot()
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    assert runner.invoke(args=["backup", str(backup_file)]).exit_code == 0

    empty = create_app(make_config(tmp_path / "elsewhere"))
    with empty.app_context():
        if db.engine.dialect.name == "sqlite":
            (tmp_path / "elsewhere").mkdir(exist_ok=True)
        result = empty.test_cli_runner().invoke(args=["restore", str(backup_file)])
        assert result.exit_code == 0, result.output
        assert "Audit chain intact" in result.output
        assert snapshot() == expected
        db.session.remove()
        db.engine.dispose()


def test_backup_keeps_an_existing_file_unless_forced(runner, tmp_path, make_org):
    make_org("Org", "other")
    db.session.commit()
    existing = tmp_path / "precious.backup"
    existing.write_text("an older backup")
    result = runner.invoke(args=["backup", str(existing)])
    assert result.exit_code != 0 and "already exists" in result.output
    assert existing.read_text() == "an older backup"
    assert runner.invoke(args=["backup", "--force", str(existing)]).exit_code == 0
    assert existing.read_text(errors="replace") != "an older backup"


def test_restore_refuses_a_file_that_is_not_a_backup(runner, tmp_path, make_org):
    make_org("Org", "other")
    before = snapshot()
    db.session.commit()
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database " * 100)
    result = runner.invoke(args=["restore", "--force", str(junk)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    db.session.remove()
    assert snapshot() == before


def rewrite_archive(path: Path, change=lambda _name, content: content,
                    fix_manifest: bool = False, edit_manifest=lambda manifest: None) -> None:
    """Write the archive again with CHANGE(name, content) -> new content (None: left out);
    with FIX_MANIFEST, the manifest then gives the changed members' new SHA-256 and size."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members.pop("manifest.json"))
    changed = {name: change(name, content) for name, content in members.items()}
    if fix_manifest:
        entries = [manifest["database"]] + manifest["files"]
        for entry in entries:
            member = entry["path"] if entry is manifest["database"] else f"files/{entry['path']}"
            entry["sha256"] = hashlib.sha256(changed[member]).hexdigest()
            entry["size"] = len(changed[member])
    edit_manifest(manifest)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in changed.items():
            if content is not None:
                archive.writestr(name, content)
        archive.writestr("manifest.json", json.dumps(manifest))


def database_member(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        return next(name for name in archive.namelist() if DATABASE_MEMBER.fullmatch(name))


@pytest.mark.sqlite_only
def test_restore_reports_a_backup_whose_audit_trail_was_tampered_with(runner, tmp_path,
                                                                      make_org):
    for name in ("One", "Two", "Three"):
        make_org(name, "other")
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    assert runner.invoke(args=["backup", str(backup_file)]).exit_code == 0

    def tamper(name, content):
        if name != database_member(backup_file):
            return content
        copy_path = tmp_path / "extracted.sqlite"
        copy_path.write_bytes(content)
        with sqlite3.connect(copy_path) as copy:
            copy.execute("DROP TRIGGER audit_events_no_update")
            copy.execute("UPDATE audit_events SET actor_label = 'mallory' WHERE id = 2")
        copy.close()
        return copy_path.read_bytes()

    rewrite_archive(backup_file, tamper, fix_manifest=True)  # as one who rewrote the manifest

    result = runner.invoke(args=["restore", "--force", str(backup_file)])
    assert result.exit_code == 1
    assert "Audit chain BROKEN at event 2" in result.output


# --- the stored files: reports, attachments, uploaded imports --------------------------------


def stored_files(data_dir: Path) -> dict[str, bytes]:
    """Every stored file by its place under the data folder: those of the folder and, with
    FILE_STORE "database", those of the database."""
    from governance import storage

    found = {path.relative_to(data_dir).as_posix(): path.read_bytes()
             for path in sorted(data_dir.rglob("*")) if path.is_file()
             and not path.name.startswith("tasks.db")}  # the task queue's, not a stored file
    if storage.in_database():
        for store in storage.STORES:
            for sha256 in stored_hashes(store):
                name = store.path_of(sha256).relative_to(
                    Path(current_app.config["DATA_DIR"])).as_posix()
                found[name] = store.read(sha256)
    return dict(sorted(found.items()))


def rows_per_table() -> dict[str, int]:
    """The rows of each table (stored files are counted as files)."""
    return {table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables if table.name != "stored_files"}


def printed_counts(output: str) -> dict[str, int]:
    found = re.search(r"(\d+) records in (\d+) tables, (\d+) stored files, (\d+) audit events",
                      output)
    assert found, output
    return dict(zip(("records", "tables", "files", "audit_events"), map(int, found.groups()),
                    strict=True))


def download(client, address: str, api: dict) -> tuple[int, bytes]:
    """GET a file (the API's with the token, a page's with the session); close the answer."""
    with client.get(address, headers=api if "/api/" in address else {}) as answer:
        return answer.status_code, answer.data


@pytest.fixture
def instance_with_files(app, client, sponsor, make_partnership, make_interaction,
                        compliance_user):
    """A report's PDF, CSV and JSON, an attachment and an uploaded import, downloaded once;
    returns the addresses and the bytes each answered."""
    sponsor.methodology_note = DEFAULT_METHODOLOGY
    partnership = make_partnership()
    interaction = make_interaction(partnership_id=partnership.id)
    attachment = attach_file(interaction, "minutes", "minutes.pdf", PDF, compliance_user)
    db.session.commit()
    token = accounts.issue_token(compliance_user, "backup test")
    db.session.commit()
    api = {"Authorization": f"Bearer {token}"}
    asked = client.post("/api/v1/reports", headers=api,
                        json={"organisation_id": sponsor.id, "year": 2025})
    assert asked.status_code == 202, asked.get_json()
    status = client.get(f"/api/v1/reports/{asked.get_json()['id']}", headers=api).get_json()
    assert status["status"] == "done", status
    login(client, compliance_user)
    rows = csv_bytes([interaction_row(partnership, 1, title="Uploaded before the backup")])
    preview = client.post("/imports/", data={"kind": "interactions",
                                              "file": (io.BytesIO(rows), "meetings.csv")},
                          content_type="multipart/form-data")
    assert preview.status_code == 200
    digest = hashlib.sha256(rows).hexdigest()
    addresses = [*status["links"]["public"].values(), *status["links"]["internal"].values(),
                 f"/attachments/{attachment.id}"]
    downloads = {}
    for address in addresses:
        status_code, downloads[address] = download(client, address, api)
        assert status_code == 200, address
    db.session.rollback()
    return {"downloads": downloads, "api": api, "email": compliance_user.email,
            "import_preview": f"/imports/interactions/{digest}", "import_bytes": rows,
            "data_dir": Path(app.config["DATA_DIR"])}


def test_a_restored_instance_serves_every_report_and_attachment_byte_for_byte(
        runner, tmp_path, instance_with_files):
    expected = snapshot()
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    made = runner.invoke(args=["backup", str(backup_file)])
    assert made.exit_code == 0, made.output

    fresh = create_app(make_config(tmp_path / "elsewhere"))
    with fresh.app_context():
        (tmp_path / "elsewhere").mkdir(exist_ok=True)
        restored = fresh.test_cli_runner().invoke(args=["restore", str(backup_file)])
        assert restored.exit_code == 0, restored.output
        assert "Audit chain intact" in restored.output
        assert snapshot() == expected
        db.session.remove()
        client = fresh.test_client()
        client.post("/login", data={"email": instance_with_files["email"],
                                    "password": PASSWORD})  # the restored account
        for address, content in instance_with_files["downloads"].items():
            status_code, body = download(client, address, instance_with_files["api"])
            assert status_code == 200, (address, body[:300])
            assert body == content, address
        preview = client.get(instance_with_files["import_preview"])
        assert preview.status_code == 200
        assert "Uploaded before the backup" in preview.get_data(as_text=True)
        kept = tmp_path / "elsewhere" / "data" / "imports"
        assert (kept / Path(instance_with_files["import_preview"]).name).read_bytes() == \
            instance_with_files["import_bytes"]
        db.session.remove()
        db.engine.dispose()


def test_backup_and_restore_print_the_counts_the_database_holds(runner, tmp_path,
                                                                instance_with_files):
    in_database = rows_per_table()
    files = stored_files(instance_with_files["data_dir"])
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    made = runner.invoke(args=["backup", str(backup_file)])
    assert made.exit_code == 0, made.output
    counted = {"records": sum(in_database.values()), "tables": len(in_database),
               "files": len(files), "audit_events": in_database["audit_events"]}
    assert printed_counts(made.output) == counted
    assert counted["files"] >= 5  # the report's three files, the attachment, the upload

    fresh = create_app(make_config(tmp_path / "elsewhere"))
    with fresh.app_context():
        (tmp_path / "elsewhere").mkdir(exist_ok=True)
        restored = fresh.test_cli_runner().invoke(args=["restore", str(backup_file)])
        assert restored.exit_code == 0, restored.output
        assert printed_counts(restored.output) == counted
        assert rows_per_table() == in_database
        assert stored_files(tmp_path / "elsewhere" / "data") == files
        db.session.remove()
        db.engine.dispose()


def _change_one_report_file(name: str, content: bytes) -> bytes | None:
    if name.startswith("files/reports/") and content.startswith(b"%PDF"):
        return content.replace(b"%PDF", b"%PDX", 1)
    return content


def _leave_out_the_attachment(name: str, content: bytes) -> bytes | None:
    return None if name.startswith("files/attachments/") else content


@pytest.mark.parametrize(("tamper", "reason"), [
    (_change_one_report_file, "does not match its SHA-256"),
    (_leave_out_the_attachment, "is missing from the archive"),
])
def test_a_tampered_archive_is_refused_and_nothing_changes(runner, tmp_path, make_org,
                                                           instance_with_files, tamper, reason):
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    assert runner.invoke(args=["backup", str(backup_file)]).exit_code == 0
    rewrite_archive(backup_file, tamper)
    make_org("Created after the backup", "other")
    db.session.commit()
    before, files = snapshot(), stored_files(instance_with_files["data_dir"])
    db.session.commit()

    result = runner.invoke(args=["restore", "--force", str(backup_file)])
    assert result.exit_code != 0
    assert reason in result.output and "nothing was restored" in result.output
    assert "Traceback" not in result.output
    db.session.remove()
    assert snapshot() == before
    assert stored_files(instance_with_files["data_dir"]) == files


def test_a_manifest_naming_a_file_outside_the_store_is_refused(runner, tmp_path,
                                                               instance_with_files):
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    assert runner.invoke(args=["backup", str(backup_file)]).exit_code == 0

    def escape(manifest):
        manifest["files"][0]["path"] = "reports/../../config.py"

    rewrite_archive(backup_file, edit_manifest=escape)

    result = runner.invoke(args=["restore", "--force", str(backup_file)])
    assert result.exit_code != 0
    assert "outside the file store" in result.output
    assert not (instance_with_files["data_dir"].parent / "config.py").exists()


def test_a_backup_of_the_database_alone_still_restores_with_a_warning(runner, tmp_path,
                                                                      make_interaction):
    make_interaction(title="Kept in an older backup")
    expected = snapshot()
    db.session.commit()
    backup_file = tmp_path / "governance.backup"
    assert runner.invoke(args=["backup", str(backup_file)]).exit_code == 0
    older = tmp_path / "database-only.backup"  # what backup wrote before it held files
    with zipfile.ZipFile(backup_file) as archive:
        older.write_bytes(archive.read(database_member(backup_file)))

    fresh = create_app(make_config(tmp_path / "elsewhere"))
    with fresh.app_context():
        (tmp_path / "elsewhere").mkdir(exist_ok=True)
        restored = fresh.test_cli_runner().invoke(args=["restore", str(older)])
        assert restored.exit_code == 0, restored.output
        assert "backup of the database alone" in restored.output
        assert "holds no report files, attachments or uploads" in restored.output
        assert printed_counts(restored.output)["audit_events"] == expected["audit_events"]
        assert snapshot() == expected
        db.session.remove()
        db.engine.dispose()
