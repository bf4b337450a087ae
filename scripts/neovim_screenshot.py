"""The README's picture of the Neovim plugin: a real Neovim in a terminal, captured.

Neovim runs (not headless) in a pseudo-terminal of 150x42 with the plugin from this checkout,
the real daemon and the test model server answering two questions with realistic text
(clients/vscode/test/support/readme-conversation.json). What Neovim draws goes through pyte, a
terminal emulator; its screen, cell by cell with colours, is written as HTML and Chromium turns
that into a PNG. Nothing is drawn by hand.

    pip install pyte   # Chromium is driven from its command line; nvim and deskmate on PATH
    python scripts/neovim_screenshot.py docs/images/neovim-chat.png
"""

from __future__ import annotations

import html
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyte

REPO = Path(__file__).resolve().parent.parent
COLUMNS, LINES = 150, 42
CANNED = REPO / "clients" / "vscode" / "test" / "support" / "readme-conversation.json"
# pyte names the 16 base colours; these are a dark terminal's.
NAMED = {
    "black": "#1e1e1e", "red": "#f14c4c", "green": "#23d18b", "brown": "#e5e510", "blue": "#3b8eea",
    "magenta": "#d670d6", "cyan": "#29b8db", "white": "#cccccc", "default": None,
}  # fmt: skip
FOREGROUND, BACKGROUND = "#d4d4d4", "#1e1e1e"

CODE = """def main():
    pass


with open("notes.txt") as f:
    for line in f:
        print(line.rstrip())
"""

INIT = r"""
vim.opt.rtp:prepend(%(plugin)s)
vim.o.termguicolors = true
vim.o.laststatus = 3
vim.cmd("filetype plugin indent on")
vim.cmd("syntax on")
vim.cmd.runtime("plugin/deskmate.lua")
require("deskmate").setup({
  cmd = { %(daemon)s, "lsp" },
  settings = { baseUrl = %(base_url)s, model = "qwen2.5-coder-7b", dataDir = %(data)s, autoTitle = false },
})
vim.cmd.edit("main.py")
local ask = require("deskmate.ask")
local function question(text, after)
  local context, attachments = require("deskmate.chat_context").take(vim.fn.getcwd(), text)
  ask.ask({ question = text, context = context, attachments = attachments, on_done = after })
end
vim.defer_fn(function()
  vim.cmd("Deskmate chat")
  vim.cmd.stopinsert()
  vim.cmd.wincmd("p")
  question(%(q1)s, function()
    vim.cmd.wincmd("p")
    question(%(q2)s, function()
      vim.defer_fn(function()
        local view = require("deskmate.chat").find(vim.fn.getcwd())
        local win = vim.fn.win_findbuf(view.buf)[1]
        vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(view.buf), 0 })
        vim.cmd("1wincmd w")
        vim.fn.writefile({ "done" }, %(marker)s)
      end, 300)
    end)
  end)
end, 800)
"""


def colour(value: str, default: str) -> str:
    if value in NAMED:
        return NAMED[value] or default
    return f"#{value}" if re.fullmatch(r"[0-9a-fA-F]{6}", value) else default


def screen_html(screen: pyte.Screen) -> str:
    rows = []
    for y in range(screen.lines):
        line = screen.buffer[y]
        spans, run, style = [], "", None
        for x in range(screen.columns):
            char = line[x]
            fg, bg = colour(char.fg, FOREGROUND), colour(char.bg, BACKGROUND)
            if char.reverse:
                fg, bg = bg, fg
            css = f"color:{fg};background:{bg}" + (";font-weight:bold" if char.bold else "")
            css += ";font-style:italic" if char.italics else ""
            if css != style and run:
                spans.append(f'<span style="{style}">{html.escape(run)}</span>')
                run = ""
            style = css
            run += char.data or " "
        spans.append(f'<span style="{style}">{html.escape(run)}</span>')
        rows.append("".join(spans))
    body = "\n".join(rows)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><style>"
        f"body{{margin:0;background:{BACKGROUND}}}"
        "pre{margin:0;padding:8px;font:14px/1.25 'DejaVu Sans Mono',monospace}"
        f"</style></head><body><pre>{body}</pre></body></html>"
    )


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "neovim-chat.png").resolve()
    nvim, daemon, chromium = shutil.which("nvim"), shutil.which("deskmate"), shutil.which("chromium")
    if not (nvim and daemon and chromium):
        print("needs nvim, deskmate and chromium on PATH", file=sys.stderr)
        return 1
    canned = json.loads(CANNED.read_text())
    questions = list(canned)
    with tempfile.TemporaryDirectory(prefix="deskmate-shot-") as tmp:
        project = Path(tmp) / "notes-app"
        (project / ".git").mkdir(parents=True)
        (project / "main.py").write_text(CODE)
        marker = Path(tmp) / "done"
        server = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "model_server.py"), "--port", "0"]
            + ["--models", "qwen2.5-coder-7b", "--chunk-delay", "0.002", "--canned", str(CANNED)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            base_url = server.stdout.readline().split()[1]
            init = Path(tmp) / "init.lua"
            init.write_text(
                INIT
                % {
                    "plugin": json.dumps(str(REPO / "clients" / "neovim")),
                    "daemon": json.dumps(daemon),
                    "base_url": json.dumps(base_url),
                    "data": json.dumps(str(Path(tmp) / "data")),
                    "q1": json.dumps(questions[1]),  # how to read a file, then the main() version
                    "q2": json.dumps(questions[0]),
                    "marker": json.dumps(str(marker)),
                }
            )
            screen = pyte.Screen(COLUMNS, LINES)
            stream = pyte.ByteStream(screen)
            pid, fd = pty.fork()
            if pid == 0:  # the child: Neovim in the terminal
                os.chdir(project)
                env = {k: v for k, v in os.environ.items() if not k.startswith(("NVIM", "VIM", "XDG_"))}
                env.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES=str(LINES))
                env.update(XDG_STATE_HOME=str(Path(tmp) / "state"), XDG_DATA_HOME=str(Path(tmp) / "xdg"))
                os.execve(nvim, [nvim, "--clean", "-u", str(init)], env)
            import fcntl
            import struct
            import termios

            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
            deadline = time.monotonic() + 60
            settled = None
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        stream.feed(os.read(fd, 65536))
                    except OSError:
                        break
                if marker.exists():
                    settled = settled or time.monotonic()
                    if time.monotonic() - settled > 1.0:
                        break
            if not marker.exists():
                print("Neovim did not finish the conversation in 60 s", file=sys.stderr)
                return 1
            page = Path(tmp) / "screen.html"
            page.write_text(screen_html(screen))
            os.write(fd, b"\x1b:qa!\r")
            time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=10)
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--screenshot={target}", f"--window-size={round(COLUMNS * 8.43) + 16},{round(LINES * 17.5) + 16}",
             page.as_uri()],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
