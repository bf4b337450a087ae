-- Sessions: list with title/time/count, switch, create, delete to the trash, restore, trash picker.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local function wait_idle(what, flag)
  H.wait(what, function()
    return flag.done
  end)
end

local function list()
  return H.exec("deskmate.listSessions", { workspaceUri = vim.uri_from_fname(H.root()) }).sessions
end

local first, second

H.test("asks in two sessions; :Deskmate new starts an empty one", function()
  H.ask("[[answer:first answer]] first question")
  -- Once answered, the session is titled (its first line here: autoTitle is off in specs).
  local view = require("deskmate.chat").find(H.root())
  H.wait("the title in the winbar", function()
    return view.title == "[[answer:first answer]] first question"
  end)
  local winbar = vim.wo[vim.fn.win_findbuf(view.buf)[1]].winbar
  H.contains(winbar, "first question", "the winbar names the session")
  H.truthy(not winbar:find("New conversation", 1, true), "no longer a new conversation: " .. winbar)
  -- In a narrow window the title is cut, so what follows it (the model) stays in view.
  local win = vim.fn.win_findbuf(view.buf)[1]
  vim.api.nvim_win_set_width(win, 60)
  require("deskmate.chat").set_status(H.root(), "")
  winbar = vim.wo[win].winbar
  H.truthy(winbar:find("%<[[answer:first an…", 1, true), "the title cut: " .. winbar)
  H.contains(winbar, "test-model", "the model still shown")
  first = H.exec("deskmate.getSession", { workspaceUri = vim.uri_from_fname(H.root()) })
  vim.cmd("Deskmate new")
  H.wait("the new session in the chat", function()
    local c = require("deskmate.chat").find(H.root())
    return c and c.session_id and c.session_id ~= first.sessionId
  end)
  H.eq("", H.chat_text(), "new session's chat is empty")
  H.ask("[[answer:second answer]] second question")
  H.ask("[[answer:third answer]] third question")
  second = H.exec("deskmate.getSession", { workspaceUri = vim.uri_from_fname(H.root()) })
  H.truthy(second.sessionId ~= first.sessionId, "a different session")
  H.eq(4, #second.messages, "messages in the second session")
end)

H.test(":Deskmate sessions lists title, last update and message count, and switches", function()
  local calls = H.stub_select(function(items, opts)
    if opts.kind == "deskmate.session" then
      for _, item in ipairs(items) do
        if item.sessionId == first.sessionId then
          return item
        end
      end
    end
    return "Switch to it"
  end)
  vim.cmd("Deskmate sessions")
  H.wait("the switch", function()
    return H.chat_text():find("first answer", 1, true)
  end)
  H.eq(2, #calls[1].items, "two sessions listed")
  local shown = table.concat(calls[1].shown, "\n")
  H.contains(shown, "2 messages", "picker line")
  H.contains(shown, "4 messages", "picker line")
  H.contains(shown, "just now", "picker line")
  for i, item in ipairs(calls[1].items) do
    H.eq(item.sessionId == second.sessionId, vim.startswith(calls[1].shown[i], "● "), "active marked")
  end
  H.truthy(not H.chat_text():find("second answer", 1, true), "the chat shows only the first session")
  local active = vim.tbl_filter(function(s)
    return s.active
  end, list())
  H.eq(first.sessionId, active[1].sessionId, "active session after the switch")
end)

H.test(":Deskmate switch <Tab> completes titles; a title switches; the picker's prompt names the listed session", function()
  vim.fn.getcompletion("Deskmate switch ", "cmdline") -- refreshes the listing in the background
  local names
  H.wait("titles for completion", function()
    names = vim.fn.getcompletion("Deskmate switch ", "cmdline")
    return vim.list_contains(names, "[[answer:second answer]] second question")
  end)
  H.truthy(vim.list_contains(names, "[[answer:first answer]] first question"), "both titles: " .. vim.inspect(names))
  H.eq({}, vim.tbl_filter(function(n)
    return n == first.sessionId or n == second.sessionId
  end, names), "no opaque ids for titled sessions")
  -- A title with spaces completes word by word.
  H.eq({ "question" }, vim.fn.getcompletion("Deskmate switch [[answer:second answer]] second q", "cmdline"), "the rest")
  vim.cmd("Deskmate switch [[answer:second answer]] second question")
  H.wait("the switch by title", function()
    return H.chat_text():find("third answer", 1, true)
  end)
  local calls = H.stub_select(function(items, opts)
    if opts.kind == "deskmate.session" then
      return items[1]
    end
    return nil -- the action is not taken
  end)
  vim.cmd("Deskmate sessions")
  H.wait("the action prompt", function()
    return #calls == 2
  end)
  local listed = calls[1].shown[1]
  local named = calls[2].prompt:match('^Session "(.*)"$')
  H.truthy(named and listed:find(named, 1, true), ("%q names the listed %q"):format(calls[2].prompt, listed))
end)

local function trash()
  return H.exec("deskmate.listSessions", { workspaceUri = vim.uri_from_fname(H.root()), trash = true }).sessions
end

H.test("moving to the trash from the picker asks nothing; :Deskmate restore {id} undoes it, whole", function()
  local calls = H.stub_select(function(items, opts)
    if opts.kind == "deskmate.session" then
      return vim.iter(items):find(function(item)
        return item.sessionId == second.sessionId
      end)
    elseif opts.kind == "deskmate.session_action" then
      return "Move it to the trash"
    end
    error("no confirmation expected for the trash, got " .. tostring(opts.kind))
  end)
  vim.cmd("Deskmate sessions")
  H.wait("the move reported", function()
    return #H.notified("to the trash", vim.log.levels.INFO) == 1
  end)
  H.eq(2, #calls, "a session, an action, no confirmation")
  H.contains(H.notified("to the trash")[1].msg, ":Deskmate restore " .. second.sessionId, "how to undo")
  H.eq(1, #list(), "one session listed")
  H.eq(second.sessionId, trash()[1].sessionId, "in the trash")
  vim.fn.getcompletion("Deskmate restore ", "cmdline") -- refreshes the trash ids in the background
  H.wait("trashed ids for completion", function()
    return vim.list_contains(vim.fn.getcompletion("Deskmate restore ", "cmdline"), second.sessionId)
  end)
  vim.cmd("Deskmate restore " .. second.sessionId)
  H.wait("the restore reported", function()
    return #H.notified("deskmate: restored", vim.log.levels.INFO) == 1
  end)
  H.contains(H.notified("deskmate: restored")[1].msg, "(4 messages)", "restore notice")
  H.eq(0, #trash(), "trash empty")
  local back = H.exec("deskmate.getSession", { sessionId = second.sessionId })
  H.eq(second.messages, back.messages, "every message back, as it was")
end)

H.test(":Deskmate delete {id} with completion, then :Deskmate trash restores; permanent delete is confirmed", function()
  vim.fn.getcompletion("Deskmate delete ", "cmdline") -- refreshes the id cache in the background
  H.wait("session ids for completion", function()
    return vim.list_contains(vim.fn.getcompletion("Deskmate delete ", "cmdline"), first.sessionId)
  end)
  vim.cmd("Deskmate delete " .. first.sessionId)
  H.wait("the first move reported", function()
    return #H.notified("to the trash", vim.log.levels.INFO) == 2
  end)
  vim.cmd("Deskmate delete " .. second.sessionId)
  H.wait("the second move reported", function()
    return #H.notified("to the trash", vim.log.levels.INFO) == 3
  end)
  H.eq(2, #trash(), "two in the trash")

  -- :Deskmate trash: pick the first, restore it.
  local calls = H.stub_select(function(items, opts)
    if opts.kind == "deskmate.trash" then
      return vim.iter(items):find(function(item)
        return item.sessionId == first.sessionId
      end)
    end
    return "Restore it"
  end)
  vim.cmd("Deskmate trash")
  H.wait("the restore reported", function()
    return #H.notified("deskmate: restored", vim.log.levels.INFO) == 2
  end)
  H.eq(3, #calls[1].items, "two sessions and 'Empty the trash'")
  H.contains(table.concat(calls[1].shown, "\n"), "purged after", "trash line")
  H.contains(calls[1].shown[3], "Empty the trash (2 sessions)", "empty item")
  H.eq({ second.sessionId }, vim.tbl_map(function(s)
    return s.sessionId
  end, trash()), "the second stays in the trash")

  -- Delete permanently: declined, then confirmed.
  local answer = "Keep"
  calls = H.stub_select(function(items, opts)
    if opts.kind == "deskmate.trash" then
      return items[1]
    elseif opts.kind == "deskmate.trash_action" then
      return "Delete permanently"
    end
    return answer
  end)
  local flag = {}
  require("deskmate.sessions").trash(H.root(), function()
    flag.done = true
  end)
  wait_idle("the declined permanent delete", flag)
  H.eq("deskmate.confirm", calls[3].kind, "confirmation asked")
  H.contains(calls[3].prompt, "cannot be undone", "confirmation prompt")
  H.eq(1, #trash(), "nothing deleted")
  answer = "Delete permanently"
  vim.cmd("Deskmate trash")
  H.wait("the permanent delete reported", function()
    return #H.notified("permanently", vim.log.levels.INFO) == 1
  end)
  H.eq(0, #trash(), "trash empty")
  H.eq({}, H.exec("deskmate.getSession", { sessionId = second.sessionId }).messages, "history gone")
end)

H.test(":Deskmate delete without id trashes the active session; the chat starts afresh; emptying the trash", function()
  vim.cmd("Deskmate switch " .. first.sessionId)
  H.wait("the switch", function()
    return H.chat_text():find("first answer", 1, true)
  end)
  vim.cmd("Deskmate delete")
  H.wait("the chat emptied", function()
    return H.chat_text() == ""
  end)
  H.eq(first.sessionId, trash()[1].sessionId, "the active session went to the trash")
  H.stub_select(function(items, opts)
    if opts.kind == "deskmate.trash" then
      return items[#items] -- Empty the trash
    end
    return "Delete permanently"
  end)
  vim.cmd("Deskmate trash")
  H.wait("the trash emptied", function()
    return #H.notified("permanently", vim.log.levels.INFO) == 2
  end)
  H.eq(0, #trash(), "trash empty")
  vim.cmd("Deskmate trash")
  H.wait("told it is empty", function()
    return #H.notified("the trash is empty", vim.log.levels.INFO) == 1
  end)
end)

H.run()
