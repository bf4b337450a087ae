"""The terminal CLI: same engine, same sessions as the daemon."""

import subprocess
import sys

from conftest import clean_env


def deskmate(*args, cwd, model_server, data_dir, check=True):
    env = clean_env(
        DESKMATE_BASE_URL=model_server.base_url,
        DESKMATE_MODEL="test-model",
        DESKMATE_DATA_DIR=str(data_dir),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "deskmate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_ask_streams_the_answer_to_stdout_and_keeps_the_project_history(project, model_server, data_dir):
    sub = project / "src"
    sub.mkdir()
    first = deskmate("ask", "what", "is", "this?", cwd=sub, model_server=model_server, data_dir=data_dir)
    assert first.stdout == "You asked: what is this?. I see 0 earlier messages.\n"
    second = deskmate("ask", "and then?", cwd=project, model_server=model_server, data_dir=data_dir)
    assert "I see 2 earlier messages" in second.stdout


def test_sessions_list_show_export_delete(project, model_server, data_dir):
    deskmate(
        "ask",
        "Explain main.py",
        "--file",
        "main.py",
        cwd=project,
        model_server=model_server,
        data_dir=data_dir,
    )
    listing = deskmate("sessions", "list", cwd=project, model_server=model_server, data_dir=data_dir).stdout
    session_id = listing.split()[1]
    assert listing.startswith("* project-") and "2 msgs" in listing and "Explain main.py" in listing
    shown = deskmate("sessions", "show", cwd=project, model_server=model_server, data_dir=data_dir).stdout
    assert "user:\nExplain main.py" in shown
    exported = deskmate(
        "sessions", "export", session_id, cwd=project, model_server=model_server, data_dir=data_dir
    )
    assert (
        exported.stdout.startswith("# Explain main.py\n")
        and "```" in exported.stdout
        and "def add" in exported.stdout
    )
    deleted = deskmate(
        "sessions", "delete", session_id, cwd=project, model_server=model_server, data_dir=data_dir
    )
    assert deleted.stdout == f"Deleted {session_id}.\n"
    again = deskmate(
        "sessions",
        "delete",
        session_id,
        cwd=project,
        model_server=model_server,
        data_dir=data_dir,
        check=False,
    )
    assert again.returncode == 1


def test_errors_go_to_stderr_with_exit_status_1(project, model_server, data_dir):
    proc = deskmate(
        "ask", "[[fail:500]]", cwd=project, model_server=model_server, data_dir=data_dir, check=False
    )
    assert proc.returncode == 1 and "HTTP 500" in proc.stderr and proc.stdout.strip() == ""
    bad = deskmate(
        "ask",
        "x",
        "--session",
        "../up",
        cwd=project,
        model_server=model_server,
        data_dir=data_dir,
        check=False,
    )
    assert bad.returncode == 1 and "Invalid session id '../up'" in bad.stderr


async def test_the_cli_and_the_daemon_share_sessions(start_daemon, project, model_server, data_dir):
    deskmate("ask", "asked in a terminal", cwd=project, model_server=model_server, data_dir=data_dir)
    daemon = await start_daemon(folders=[project])
    session = await daemon.run("deskmate.getSession", {})
    assert session["messages"][0]["content"] == "asked in a terminal"
