"""The terminal CLI: same engine, same sessions as the daemon."""

import os
import re
import subprocess
import sys

from conftest import clean_env


def read_terminal(main: int) -> bytes:
    """Everything a child wrote to the pty whose controlling side is ``main``, until it closed it."""
    seen = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    return seen


def cli_env(model_server, data_dir) -> dict[str, str]:
    """The CLI's environment: the test model server, the test data dir, nothing from the machine."""
    return clean_env(
        DESKMATE_BASE_URL=model_server.base_url, DESKMATE_MODEL="test-model", DESKMATE_DATA_DIR=str(data_dir)
    )


def deskmate(*args, cwd, model_server, data_dir, check=True, env=None):
    proc = subprocess.run(
        [sys.executable, "-m", "deskmate", *args],
        cwd=cwd,
        env={**cli_env(model_server, data_dir), **(env or {})},
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
    assert deleted.stdout.startswith(f"Moved {session_id} to the trash (purged after ")
    assert f"`deskmate sessions restore {session_id}` brings it back" in deleted.stdout
    run = dict(cwd=project, model_server=model_server, data_dir=data_dir)
    listed = deskmate("sessions", "list", **run).stdout
    assert listed == "No sessions yet.\n"  # in the trash; the project goes on in a fresh session
    trash = deskmate("sessions", "trash", **run).stdout
    assert trash.startswith(f"  {session_id}") and "2 msgs  Explain main.py" in trash
    restored = deskmate("sessions", "restore", session_id, **run)
    assert restored.stdout == f"Restored {session_id} (2 messages): Explain main.py\n"
    assert deskmate("sessions", "trash", **run).stdout == "The trash is empty.\n"
    not_binned = deskmate("sessions", "restore", session_id, **run, check=False)
    assert not_binned.returncode == 1 and "is not in the trash" in not_binned.stderr
    gone = deskmate("sessions", "delete", "--permanent", session_id, **run)
    assert gone.stdout == f"Deleted {session_id} permanently.\n"
    again = deskmate("sessions", "delete", session_id, **run, check=False)
    assert again.returncode == 1 and deskmate("sessions", "trash", **run).stdout == "The trash is empty.\n"


def test_prune_and_the_expiry_warning_of_list(project, model_server, data_dir):
    from datetime import datetime, timedelta, timezone

    from deskmate.memory import FileBackend, Message
    from deskmate.memory.models import SessionMeta

    def days_ago(days: int) -> str:
        moment = datetime.now(timezone.utc) - timedelta(days=days)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    async def fill() -> None:
        store = FileBackend(data_dir)
        for session_id, age in (("ancient", 45), ("soon", 26), ("binned", 50)):
            message = Message(role="user", content=session_id, timestamp=days_ago(age))
            await store.append(session_id, [message], title=session_id, workspace_uri=project.as_uri())
        await store.update("binned", lambda info: (info.title, SessionMeta(deleted_at=days_ago(40))))

    import asyncio

    asyncio.run(fill())
    env = {"DESKMATE_RETENTION_DAYS": "30"}
    run = dict(cwd=project, model_server=model_server, data_dir=data_dir)
    listing = deskmate("sessions", "list", **run, env=env)
    assert "ancient" in listing.stdout and "soon" in listing.stdout
    assert '"soon" (soon, in 4 days)' in listing.stderr and "unset retentionDays" in listing.stderr
    dry = deskmate("sessions", "prune", "--dry-run", **run, env=env).stdout
    assert "would be moved to the trash: ancient" in dry and "would be purged: binned" in dry
    assert "1 would be moved to the trash, 1 would be purged (retention: 30 days" in dry
    assert "binned" in deskmate("sessions", "trash", **run).stdout  # the dry run changed nothing
    done = deskmate("sessions", "prune", **run, env=env).stdout
    assert "moved to the trash: ancient" in done and "purged: binned" in done
    trash = deskmate("sessions", "trash", **run).stdout
    assert "ancient" in trash and "binned" not in trash
    untouched = deskmate("sessions", "prune", **run).stdout  # no retention set: nothing expires
    assert untouched.endswith(
        "0 moved to the trash, 0 purged (retention: none (nothing expires); trash kept 30 days).\n"
    )


def test_the_terminal_commands_take_the_time_of_retention_from_the_testing_clock(
    project, model_server, data_dir, tmp_path
):
    run = dict(cwd=project, model_server=model_server, data_dir=data_dir)
    clock = tmp_path / "clock"
    env = {"DESKMATE_RETENTION_DAYS": "30", "DESKMATE_TEST_CLOCK_FILE": str(clock)}
    deskmate("ask", "hello", **run)
    assert "trash within 7 days" not in deskmate("sessions", "list", **run, env=env).stderr  # real time
    clock.write_text(str(26 * 86400))  # 26 days on
    assert ", in 4 days)" in deskmate("sessions", "list", **run, env=env).stderr
    clock.write_text(str(31 * 86400))
    assert "1 moved to the trash, 0 purged" in deskmate("sessions", "prune", **run, env=env).stdout


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


ESCAPES = "\x1b]52;c;cGF5bG9hZA==\x07\x1b[2J\x1b[H\x1b]0;pwned\x1b\\\rover\x9b31m"


def deskmate_on_a_terminal(*args, cwd, model_server, data_dir) -> bytes:
    """Run deskmate with its stdout on a real pseudo-terminal; returns what reached the terminal."""
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskmate", *args],
        cwd=cwd,
        env=cli_env(model_server, data_dir),
        stdout=child,
        stderr=subprocess.PIPE,
    )
    os.close(child)
    seen = read_terminal(main)
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
    return seen


def test_control_sequences_from_the_model_never_reach_a_terminal(project, model_server, data_dir):
    question = f"[[answer:before{ESCAPES}after\tend]] hi"
    shown = deskmate_on_a_terminal("ask", question, cwd=project, model_server=model_server, data_dir=data_dir)
    assert b"\x1b" not in shown and b"\x07" not in shown and "\x9b".encode() not in shown
    assert b"before" in shown and b"after\tend" in shown
    history = deskmate_on_a_terminal(
        "sessions", "show", cwd=project, model_server=model_server, data_dir=data_dir
    )
    assert b"\x1b" not in history and b"after\tend" in history
    # Piped, the answer is exactly what the model wrote.
    piped = deskmate("ask", question, cwd=project, model_server=model_server, data_dir=data_dir)
    assert ESCAPES.replace("\r", "\n") in piped.stdout  # (text mode reads "\r" as a newline)


def test_file_context_in_the_terminal_must_be_a_regular_file(project, model_server, data_dir):

    os.mkfifo(project / "pipe.txt")
    refused = deskmate(
        "ask",
        "what?",
        "--file",
        "pipe.txt",
        cwd=project,
        model_server=model_server,
        data_dir=data_dir,
        check=False,
    )
    assert refused.returncode == 1 and "not a regular file" in refused.stderr
    environ = deskmate(
        "ask",
        "what?",
        "--file",
        "/proc/self/environ",
        cwd=project,
        model_server=model_server,
        data_dir=data_dir,
        check=False,
    )
    assert environ.returncode == 1 and "system file" in environ.stderr


def test_ask_redacts_secrets_and_says_so_on_stderr(project, model_server, data_dir):
    env_file = project / ".env"
    env_file.write_text("OPENAI_API_KEY=sk-proj-" + "Qx7" * 12 + "\nDEBUG=1\n")
    result = deskmate(
        "ask", "why is AKIAIOSFODNN7EXAMPLE refused?", "--file", str(env_file),
        cwd=project, model_server=model_server, data_dir=data_dir,
    )  # fmt: skip
    assert "redacted 1 AWS key and 1 OpenAI key" in result.stderr
    assert "[redacted: AWS key]" in result.stdout  # the test model echoes the question it received
    stored = b"".join(path.read_bytes() for path in (data_dir / "sessions").glob("*.jsonl"))
    assert b"AKIAIOSFODNN7EXAMPLE" not in stored and b"Qx7Qx7" not in stored
    assert b"[redacted: OpenAI key]" in stored


def test_sessions_fork_at_a_message_shown_by_show(project, model_server, data_dir):
    def run(*args, check=True):
        return deskmate(*args, cwd=project, model_server=model_server, data_dir=data_dir, check=check)

    run("ask", "first")
    run("ask", "second")
    shown = run("sessions", "show").stdout
    headers = re.findall(r"^\[[^\]]+\] ([0-9a-f]+) (user|assistant):$", shown, re.MULTILINE)
    assert [role for _, role in headers] == ["user", "assistant", "user", "assistant"]
    source_id = run("sessions", "list").stdout.split()[1]
    first_answer = headers[1][0]

    forked = run("sessions", "fork", source_id, "--at", first_answer).stdout
    fork_id = re.search(r"into (\S+) \(2 messages, 'first \(fork\)'\)", forked).group(1)
    listing = run("sessions", "list").stdout
    assert f"* {fork_id}" in listing and f"  {source_id}" in listing  # the fork is the active one
    fork_shown = run("sessions", "show").stdout
    assert fork_shown.startswith(f"(forked from {source_id} at message {first_answer})\n")
    assert "I see 2 earlier messages" in run("ask", "third").stdout  # continues after the first turn
    assert len(re.findall(r"^\[", run("sessions", "show", source_id).stdout, re.MULTILINE)) == 4

    missing = run("sessions", "fork", source_id, "--at", "nope", check=False)
    assert missing.returncode == 1 and f'Session "{source_id}" has no message "nope"' in missing.stderr


def test_sessions_rename_tag_pin_and_search(project, model_server, data_dir):
    def run(*args, check=True):
        return deskmate(*args, cwd=project, model_server=model_server, data_dir=data_dir, check=check)

    run("ask", "How does parse_args read --verbose?")
    session_id = run("sessions", "list").stdout.split()[1]
    assert (
        f"Renamed {session_id} to 'Parser notes'."
        in run("sessions", "rename", session_id, "Parser", "notes").stdout
    )
    assert "tagged: cli, work." in run("sessions", "tag", session_id, "cli", "work").stdout
    assert "tagged: cli." in run("sessions", "tag", session_id, "--remove", "work").stdout
    assert f"Pinned {session_id}." in run("sessions", "pin", session_id).stdout
    listing = run("sessions", "list").stdout
    assert "Parser notes  (pinned) #cli" in listing

    found = run("sessions", "search", "PARSE_ARGS", "--role", "user").stdout
    assert session_id in found and "**parse_args**" in found and found.endswith("1 match.\n")
    assert run("sessions", "search", '"verbose parse_args"', check=False).returncode == 1
    refused = run("sessions", "rename", session_id, "x" * 201, check=False)
    assert refused.returncode == 1 and '"title" is 201 characters long' in refused.stderr
    missing = run("sessions", "pin", "no-such-session", check=False)
    assert missing.returncode == 1 and "'no-such-session' does not exist" in missing.stderr


def run_cli(*args, cwd, env):
    return subprocess.run(
        [sys.executable, "-m", "deskmate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_terminal_errors_name_environment_variables_not_editor_settings(project, model_server, data_dir):
    no_server = run_cli("ask", "hi", cwd=project, env=clean_env(DESKMATE_DATA_DIR=str(data_dir)))
    assert no_server.returncode == 1
    assert "$DESKMATE_BASE_URL" in no_server.stderr and "$DESKMATE_API_KEY_ENV" in no_server.stderr
    assert "deskmate.baseUrl" not in no_server.stderr and "deskmate.apiKeyEnv" not in no_server.stderr
    root = model_server.base_url.removesuffix("/v1")
    env = {**cli_env(model_server, data_dir), "DESKMATE_BASE_URL": root}
    missing_v1 = run_cli("ask", "hi", cwd=project, env=env)
    assert missing_v1.returncode == 1 and "likely missing /v1" in missing_v1.stderr
    assert f"Set $DESKMATE_BASE_URL to {root}/v1." in missing_v1.stderr


def test_terminal_settings_come_from_the_environment(project, model_server, data_dir):
    env = {**cli_env(model_server, data_dir), "DESKMATE_MAX_TOKENS": "3"}
    model_server.clear_requests()
    proc = run_cli("ask", "[[tokens:9]] [[length:3]] count", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    assert model_server.requests[-1]["max_tokens"] == 3
    assert proc.stdout == "t0 t1 t2 \n\n(cut off at the length limit)\n"
    bad = run_cli("ask", "hi", cwd=project, env={**env, "DESKMATE_MAX_TOKENS": "lots"})
    assert "Ignoring $DESKMATE_MAX_TOKENS must be a number, got 'lots'" in bad.stderr


def on_a_terminal(*args, cwd, env) -> tuple[bytes, subprocess.Popen]:
    """Run deskmate with stdout and stderr on a real pseudo-terminal; returns what reached the
    terminal and the finished process."""
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskmate", *args], cwd=cwd, env=env, stdout=child, stderr=child
    )
    os.close(child)
    seen = read_terminal(main)
    proc.wait(timeout=60)
    return seen, proc


def test_a_terminal_shows_a_waiting_indicator_until_the_first_token(project, model_server, data_dir):
    question = "[[answer:slow but here]] [[rate:4]] hi"
    shown, proc = on_a_terminal("ask", question, cwd=project, env=cli_env(model_server, data_dir))
    assert proc.returncode == 0, shown
    before, _, answer = shown.partition(b"\r\x1b[K")  # the indicator's line is cleared first
    assert b"waiting for the model" in before and b"slow" not in before
    assert answer.replace(b"\r\n", b"\n") == b"slow but here\n"
    piped = deskmate("ask", question, cwd=project, model_server=model_server, data_dir=data_dir)
    assert piped.stdout == "slow but here\n" and "waiting" not in piped.stderr


def test_lsp_on_a_terminal_says_it_waits_for_an_editor_on_stderr(project, model_server, data_dir):
    import pty

    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deskmate", "lsp"],
        cwd=project,
        env=cli_env(model_server, data_dir),
        stdin=child,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(child)
    try:
        line = proc.stderr.readline().decode()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
        os.close(main)
    assert "waiting for an editor on stdin/stdout" in line and "deskmate ask" in line
    assert out == b""  # stdout is the protocol's: nothing else ever goes there


def test_sessions_new_show_and_list_in_the_terminal(project, model_server, data_dir):
    def run(*args, check=True):
        return deskmate(*args, cwd=project, model_server=model_server, data_dir=data_dir, check=check)

    assert run("sessions", "list").stdout == "No sessions yet.\n"  # no phantom for an unused folder
    made = run("sessions", "new", "--title", "Build questions").stdout
    session_id = re.match(r"New session (\S+); it is now this project's active session\.", made).group(1)
    listing = run("sessions", "list").stdout
    assert re.match(rf"\* {session_id} +\d{{4}}-\d\d-\d\d \d\d:\d\d +0 msgs  Build questions\n$", listing)
    run("ask", "Explain main.py", "--file", "main.py")
    shown = run("sessions", "show").stdout
    assert f"--- context: {project / 'main.py'}\ndef add(a, b):" in shown
    assert re.search(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d\] [0-9a-f]+ user:$", shown, re.MULTILINE)
    unknown = run("sessions", "show", "no-such-session", check=False)
    assert unknown.returncode == 1 and "there is no session 'no-such-session'" in unknown.stderr
    assert unknown.stdout == ""


def test_help_is_plain_text():
    for args in ([], ["sessions"], ["sessions", "fork"]):
        text = subprocess.run(
            [sys.executable, "-m", "deskmate", *args, "--help"], capture_output=True, text=True, timeout=60
        ).stdout
        assert "usage: deskmate" in text and "``" not in text and "`" not in text


def test_ask_with_several_files_sends_and_shows_each(project, model_server, data_dir):
    (project / "util.py").write_text("def helper():\n    return 42\n")
    run = dict(cwd=project, model_server=model_server, data_dir=data_dir)
    model_server.clear_requests()
    deskmate("ask", "How do these fit?", "--file", "main.py", "--file", "util.py", **run)
    prompts = [r["messages"][-1]["content"] for r in model_server.requests]
    assert any("def add(a, b):" in p and "def helper():" in p for p in prompts), prompts
    shown = deskmate("sessions", "show", **run).stdout
    assert f"--- context: {project / 'main.py'}\ndef add(a, b):" in shown
    assert f"--- context: {project / 'util.py'}\ndef helper():" in shown


def test_models_lists_the_server_models_and_use_sets_this_projects(project, model_server, data_dir):
    run = dict(cwd=project, model_server=model_server, data_dir=data_dir)
    model_server.models = ["test-model", "qwen2.5-coder-7b"]
    try:
        assert deskmate("models", **run).stdout == "* test-model\n  qwen2.5-coder-7b\n"
        assert deskmate("models", "use", "qwen2.5-coder-7b", **run).stdout == (
            "This project now asks qwen2.5-coder-7b.\n"
        )
        assert deskmate("models", "list", **run).stdout == "  test-model\n* qwen2.5-coder-7b\n"
        model_server.clear_requests()
        deskmate("ask", "which model?", **run)
        assert model_server.requests[0]["model"] == "qwen2.5-coder-7b"
        assert "(the model setting)" in deskmate("models", "reset", **run).stdout
    finally:
        model_server.models = ["test-model"]


def test_sessions_compact_uncompact_and_pin_a_message(project, model_server, data_dir):
    def run(*args, check=True):
        return deskmate(*args, cwd=project, model_server=model_server, data_dir=data_dir, check=check)

    run("ask", "RULE: tabs, never spaces")
    run("ask", "second question")
    run("ask", "third question")
    shown = run("sessions", "show").stdout
    ids = re.findall(r"^\[[^\]]+\] ([0-9a-f]+) (?:user|assistant)", shown, re.MULTILINE)
    session_id = run("sessions", "list").stdout.split()[1]
    assert "summarized" in shown and "The next ask sends" in shown
    pinned = run("sessions", "pin", session_id, "--message", ids[0]).stdout
    assert pinned == f"Pinned message {ids[0]} of {session_id}.\n"
    done = run("sessions", "compact", "--instructions", "keep the rules").stdout
    summary_id = re.search(r"as summary ([0-9a-f]+);", done).group(1)
    assert f"Summarized 4 messages of {session_id} ({ids[0]} .. {ids[3]})" in done
    assert "Summary of 3 messages: second question" in done  # the pinned rule is not summarized
    shown = run("sessions", "show").stdout
    assert f"{ids[0]} user (pinned):" in shown and f"Summary {summary_id} (in use) of 4 messages" in shown
    assert "4 messages summarized" in shown and len(re.findall(r"^\[", shown, re.MULTILINE)) == 6
    assert "Dropped summary" in run("sessions", "uncompact", session_id, summary_id).stdout
    assert "Summary " not in run("sessions", "show").stdout
    again = run("sessions", "uncompact", session_id, summary_id, check=False)
    assert again.returncode == 1 and f'has no summary "{summary_id}"' in again.stderr
    unpinned = run("sessions", "pin", session_id, "--message", ids[0], "--off").stdout
    assert unpinned.startswith("Unpinned message")
