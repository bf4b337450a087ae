-- An ask streams into the chat buffer; the selection goes along; progress and export work.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

H.test(":Deskmate ask streams the answer into the chat buffer and the final text matches", function()
  local root = H.root()
  local progress = {}
  vim.api.nvim_create_autocmd("LspProgress", {
    callback = function(ev)
      local c = vim.lsp.get_client_by_id(ev.data.client_id)
      if c and c.name == "deskmate" then
        table.insert(progress, ev.data.params.value.kind)
      end
    end,
  })
  local answer = "Streaming works one word at a time and the chat shows every word as it arrives."
  vim.cmd("Deskmate ask [[answer:" .. answer .. "]] [[rate:40]] tell me")

  local chat = require("deskmate.chat")
  H.wait("the chat buffer", function()
    return chat.find(root)
  end)
  local buf = chat.find(root).buf
  -- Record the answer as the buffer shows it on every change, to see it grow.
  local seen = {}
  vim.api.nvim_buf_attach(buf, false, {
    on_lines = function()
      vim.schedule(function()
        local text = H.chat_text(root)
        local partial = text:match("## Deskmate\n\n(.*)$")
        if partial and partial ~= seen[#seen] then
          table.insert(seen, partial)
        end
      end)
    end,
  })
  H.truthy(chat.is_open(root), "the chat window opened")
  H.wait("the full answer in the buffer", function()
    return H.chat_text(root):find(answer, 1, true) and not require("deskmate.ask").running(root)
  end)

  -- It grew piece by piece, each state a prefix of the answer: streamed, not pasted at the end.
  local partials = vim.tbl_filter(function(p)
    return p ~= "" and p ~= answer
  end, seen)
  H.truthy(#partials >= 5, ("several partial states (saw %d: %s)"):format(#partials, vim.inspect(seen)))
  for _, p in ipairs(partials) do
    H.truthy(vim.startswith(answer, p), ("partial %q is a prefix of the answer"):format(p))
  end

  local text = H.chat_text(root)
  H.contains(text, "## You\n\n[[answer:" .. answer .. "]] [[rate:40]] tell me\n\n## Deskmate\n\n" .. answer)
  H.eq(answer, text:match("## Deskmate\n\n(.*)$"), "the answer section")
  H.truthy(vim.list_contains(progress, "begin") and vim.list_contains(progress, "end"), "LspProgress begin/end")
  H.eq(0, #H.notified("", vim.log.levels.WARN), "no warnings or errors")

  -- The view followed the answer.
  local win = vim.fn.win_findbuf(buf)[1]
  H.eq(vim.api.nvim_buf_line_count(buf), vim.api.nvim_win_get_cursor(win)[1], "chat cursor on the last line")
end)

H.test("the stored answer equals the streamed one", function()
  local session = H.exec("deskmate.getSession", { workspaceUri = vim.uri_from_fname(H.root()) })
  local last = session.messages[#session.messages]
  H.eq("assistant", last.role, "last role")
  H.eq(H.chat_text():match("## Deskmate\n\n(.*)$"), last.content, "stored answer")
end)

H.test("over a visual range, the selection goes along as context", function()
  local file = vim.fs.joinpath(H.root(), "sample.py")
  vim.fn.writefile({ "def add(a, b):", "    return a + b  # sum_marker", "", "print(add(1, 2))" }, file)
  vim.cmd.edit(file)
  -- Select "return a + b  # sum_marker" charwise, as a user would, then run the command on it.
  vim.api.nvim_win_set_cursor(0, { 2, 4 })
  vim.cmd("normal! v$h")
  vim.cmd("normal! \27") -- leave Visual mode, which sets '< and '>
  H.http_get_json("/_requests") -- make sure the server is reachable before clearing
  vim.cmd("'<,'>Deskmate ask [[answer:seen]] what does this do?")
  H.wait("the answer", function()
    return not require("deskmate.ask").running(H.root()) and H.chat_text():find("seen", 1, true)
  end)
  local requests = H.http_get_json("/_requests").requests
  local body = vim.json.encode(requests[#requests].messages)
  H.contains(body, "return a + b  # sum_marker", "the model request")
  H.contains(body, "what does this do?", "the model request")
  H.contains(H.chat_text(), "*(with sample.py:2)*", "the chat notes the context")
end)

H.test("the ask keymap over a Visual selection prompts for the question and sends the lines", function()
  require("deskmate").setup(vim.tbl_deep_extend("force", require("deskmate.config").options, {
    keymaps = { ask = "<Space>q" },
  }))
  local prompts = {}
  vim.ui.input = function(opts, on_confirm)
    table.insert(prompts, opts.prompt)
    on_confirm("[[answer:lines seen]] explain these lines")
  end
  vim.cmd.edit(vim.fs.joinpath(H.root(), "sample.py"))
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  H.http_get_json("/_requests")
  vim.api.nvim_feedkeys(vim.keycode("Vj<Space>q"), "mx", false)
  H.wait("the answer", function()
    return not require("deskmate.ask").running(H.root()) and H.chat_text():find("lines seen$")
  end)
  H.eq({ "Ask about the selection: " }, prompts, "prompted once")
  local requests = H.http_get_json("/_requests").requests
  local body = vim.json.encode(requests[#requests].messages)
  H.contains(body, "def add(a, b):", "the model request")
  H.contains(body, "sum_marker", "the model request")
  H.truthy(not body:find("print(add", 1, true), "only the selected lines")
  H.contains(H.chat_text(), "*(with sample.py:1-2)*", "the chat notes the context")
end)

H.test(":Deskmate export opens the session as Markdown in a new buffer", function()
  local before = vim.api.nvim_get_current_buf()
  vim.cmd("Deskmate export")
  H.wait("the export buffer", function()
    return vim.b[vim.api.nvim_get_current_buf()].deskmate_export
  end)
  local buf = vim.api.nvim_get_current_buf()
  H.truthy(buf ~= before, "a new buffer")
  H.eq("markdown", vim.bo[buf].filetype, "filetype")
  local text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
  H.contains(text, "Streaming works one word at a time", "export")
  H.contains(text, "what does this do?", "export")
end)

H.test(":Deskmate with no or unknown subcommand lists the commands; completion offers them", function()
  vim.cmd("Deskmate")
  H.truthy(#H.notified(":Deskmate ask {question}") == 1, "usage shown")
  vim.cmd("Deskmate frobnicate")
  H.truthy(#H.notified('unknown subcommand "frobnicate"', vim.log.levels.ERROR) == 1, "unknown reported")
  H.eq({ "search", "sessions", "switch" }, vim.fn.getcompletion("Deskmate s", "cmdline"), "completion")
  H.eq({ "cancel", "chat", "compact" }, vim.fn.getcompletion("Deskmate c", "cmdline"), "completion")
end)

H.test("a history load that returns while an answer streams does not wipe the answer", function()
  local root = H.root()
  local done = false
  require("deskmate.ask").ask({
    root = root,
    question = "[[tokens:40]] [[rate:40]] reloaded mid-answer",
    on_done = function()
      done = true
    end,
  })
  H.wait("some text", function()
    return H.chat_text():match("t0 t1 [^\n]*$")
  end)
  -- What reopening the chat does; its (older) history comes back while the answer streams.
  require("deskmate.ask").load(root)
  H.wait("the answer to end", function()
    return done
  end)
  H.wait("the whole answer in the chat", function()
    return H.chat_text():find("t39", 1, true) ~= nil
  end)
  local text = H.chat_text()
  H.contains(text, "reloaded mid-answer", "the question")
  H.contains(text, "t0 t1 t2", "the start of the answer")
end)

H.test("coalesced deltas, several lines each, render exactly as the answer", function()
  local root = H.root()
  local deltas = {}
  require("deskmate.client").subscribe("deskmate/askDelta", function(params)
    table.insert(deltas, { index = params.index, delta = params.delta })
  end)
  -- 30 lines sent as fast as the server can: the daemon coalesces them into a few deltas.
  local lines = {}
  for i = 1, 30 do
    table.insert(lines, ("line %d: `code` and **bold**"):format(i))
  end
  local answer = table.concat(lines, "\n")
  local done = false
  require("deskmate.ask").ask({
    root = root,
    question = "[[answer:" .. answer .. "]] many lines",
    on_done = function()
      done = true
    end,
  })
  H.wait("the answer to end", function()
    return done
  end)
  H.truthy(#deltas > 1 and #deltas < 30 * 4, ("coalesced into a few deltas (got %d)"):format(#deltas))
  local streamed = {}
  for i, d in ipairs(deltas) do
    H.eq(i - 1, d.index, "deltas in index order")
    table.insert(streamed, d.delta)
  end
  H.eq(answer, table.concat(streamed), "the deltas make the answer")
  -- What streamed into the buffer is the answer itself: end_turn had nothing to repair.
  H.eq(answer, table.concat(require("deskmate.chat").find(root).streamed), "streamed text")
  -- The last answer section (the chat may have been redrawn from the stored history meanwhile).
  H.eq(answer, H.chat_text(root):match(".*## Deskmate\n\n(.*)$"), "the last answer section")
end)

H.run()
