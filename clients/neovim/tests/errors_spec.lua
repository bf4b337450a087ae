-- Daemon errors and warnings reach the user through vim.notify.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

H.test("a failing answer shows the daemon's message at ERROR level", function()
  local result, err = H.ask("[[fail:500]] this will fail")
  H.eq(nil, result, "no result")
  H.truthy(err and err.message and err.message ~= "", "an error with a message")
  local errors = H.notified(err.message, vim.log.levels.ERROR)
  H.eq(1, #errors, "one ERROR notification with the daemon's message")
  local failed = "*(failed: " .. err.message:gsub("\n", " ") .. ")*"
  H.contains(H.chat_text(), failed, "the chat says it failed, and why")
  -- Reloaded from the stored history, the failure reads the same.
  vim.cmd("Deskmate chat") -- closes
  require("deskmate.chat").find(H.root()).loaded = nil
  vim.cmd("Deskmate chat") -- opens and reloads history
  H.wait("history reloaded", function()
    return H.chat_text():find("this will fail", 1, true)
  end)
  H.contains(H.chat_text(), failed, "the stored reason, after a reload")
  -- The next question still works.
  local ok = H.ask("[[answer:recovered]] again")
  H.eq("recovered", ok.answer, "answer after a failure")
end)

H.test("redacted secrets are reported once, as an INFO notification", function()
  local before = #H.notified("redacted", vim.log.levels.INFO)
  local result = H.ask("is AKIAIOSFODNN7EXAMPLE my key?")
  H.contains(result.answer, "[redacted: AWS key]", "the model saw the redacted question")
  H.eq("AWS key", result.redacted[1].kind, "the result says what was redacted")
  H.wait("the notice", function()
    return #H.notified("redacted", vim.log.levels.INFO) > before
  end)
  local notices = H.notified("redacted 1 AWS key", vim.log.levels.INFO)
  H.eq(1, #notices, "one notice for the ask")
  H.truthy(not notices[1].msg:find("AKIAIOSFODNN7EXAMPLE", 1, true), "the notice does not repeat the secret")
end)

H.test("an invalid request is reported with the daemon's message", function()
  local before = #H.notifications
  local done, e = false, nil
  require("deskmate.client").exec(H.root(), "deskmate.switchSession", { sessionId = "no-such-session" }, function(err)
    done, e = true, err
  end)
  H.wait("the error", function()
    return done
  end)
  H.truthy(e and e.message:find("no-such-session", 1, true), "error names the session: " .. vim.inspect(e))
  vim.cmd("Deskmate switch no-such-session")
  H.wait("the notification", function()
    return #H.notified("no-such-session", vim.log.levels.ERROR) > 0
  end)
  H.truthy(#H.notifications > before, "notified")
end)

H.test("a damaged history is reported as a warning", function()
  local root = H.root()
  local session = H.exec("deskmate.getSession", { workspaceUri = vim.uri_from_fname(root) })
  local id = session.sessionId
  H.stop_daemons()
  -- Damage every stored file of this session (whatever the layout under dataDir).
  local damaged = 0
  for name, kind in vim.fs.dir(H.env.data_dir, { depth = 5 }) do
    local base = vim.fs.basename(name)
    if kind == "file" and base:sub(1, #id + 1) == id .. "." and not base:match("%.lock$") then
      local f = assert(io.open(vim.fs.joinpath(H.env.data_dir, name), "wb"))
      f:write("\0\1 not json {{{\ngarbage\n")
      f:close()
      damaged = damaged + 1
    end
  end
  H.truthy(damaged > 0, "found the session file of " .. id)
  require("deskmate.chat").find(root).loaded = nil
  vim.cmd("Deskmate chat")
  vim.cmd("Deskmate chat")
  H.wait("the warning", function()
    return #H.notified("damaged", vim.log.levels.WARN) > 0
  end)
  local warning = H.notified("damaged", vim.log.levels.WARN)[1]
  H.eq(vim.log.levels.WARN, warning.level, "level")
  H.contains(warning.msg, id, "the warning names the session")
end)

H.test("a daemon that dies mid-answer is reported; the next question starts a new one", function()
  local root = H.root()
  local done, err = false, nil
  require("deskmate.ask").ask({
    root = root,
    question = "[[tokens:200]] [[rate:20]] slow",
    on_done = function(e)
      done, err = true, e
    end,
  })
  H.wait("some text", function()
    return H.chat_text():match("t0 t1 [^\n]*$")
  end)
  -- Our own child processes only: the daemon this Neovim started.
  local killed = 0
  for _, pid in ipairs(vim.api.nvim_get_proc_children(vim.fn.getpid())) do
    vim.uv.kill(pid, "sigkill")
    killed = killed + 1
  end
  H.truthy(killed > 0, "found the daemon process")
  H.wait("the crash reported", function()
    return #H.notified("the daemon stopped", vim.log.levels.ERROR) > 0
  end)
  H.wait("the ask ended", function()
    return not require("deskmate.ask").running(root)
  end)
  H.contains(H.chat_text(), "*(failed: the daemon stopped)*", "chat")
  H.truthy(done, "the ask's callback ran")
  H.eq("the daemon stopped", err and err.message, "its error")
  local r = H.ask("[[answer:back again]] hello")
  H.eq("back again", r.answer, "answer from a new daemon")
end)

H.test("errors name Neovim's settings, not VS Code's", function()
  H.stop_daemons()
  H.setup({ settings = { model = "missing-model" } })
  local _, err = H.ask("hello")
  H.contains(err.message, "Set deskmate.model", "the daemon's own wording")
  local shown = H.notified("does not know the model", vim.log.levels.ERROR)
  H.eq(1, #shown, "one notification")
  H.contains(shown[1].msg, "Set settings.model to a model it serves", "named as set in setup()")
  H.truthy(not shown[1].msg:find("deskmate.model", 1, true), "no VS Code setting name: " .. shown[1].msg)
end)

H.test("a missing daemon command is reported at ERROR level", function()
  H.stop_daemons()
  require("deskmate").setup({ cmd = { "deskmate-no-such-command", "lsp" } })
  vim.cmd("Deskmate ask hello")
  H.wait("the notification", function()
    return #H.notified("deskmate-no-such-command", vim.log.levels.ERROR) > 0
  end)
  H.truthy(not require("deskmate.ask").running(H.root()), "nothing left running")
end)

H.run()
