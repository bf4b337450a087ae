-- Sessions: list with title/time/count, switch, create, delete after confirmation.
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

H.test("deleting from the picker asks for confirmation; declining keeps the session", function()
  local calls = H.stub_select(function(items, opts)
    if opts.kind == "deskmate.session" then
      return vim.iter(items):find(function(item)
        return item.sessionId == second.sessionId
      end)
    elseif opts.kind == "deskmate.session_action" then
      return "Delete it"
    end
    return "Keep"
  end)
  local flag = {}
  require("deskmate.sessions").pick(H.root(), function()
    flag.done = true
  end)
  wait_idle("the declined delete", flag)
  H.eq("deskmate.confirm", calls[3].kind, "confirmation asked")
  H.contains(calls[3].prompt, "Delete the session", "confirmation prompt")
  H.eq(2, #list(), "nothing deleted")
end)

H.test("confirming deletes the session", function()
  H.stub_select(function(items, opts)
    if opts.kind == "deskmate.session" then
      for _, item in ipairs(items) do
        if item.sessionId == second.sessionId then
          return item
        end
      end
    elseif opts.kind == "deskmate.session_action" then
      return "Delete it"
    end
    return "Delete"
  end)
  vim.cmd("Deskmate sessions")
  H.wait("the deletion reported", function()
    return #H.notified("deskmate: deleted", vim.log.levels.INFO) == 1
  end)
  H.eq(1, #list(), "one session left")
  H.eq(first.sessionId, list()[1].sessionId, "the first session remains")
end)

H.test(":Deskmate switch {id} and :Deskmate! delete {id} (no confirmation), with completion", function()
  vim.cmd("Deskmate new")
  H.wait("the new session", function()
    return #list() == 2
  end)
  H.ask("[[answer:x]] keep this one around")
  vim.fn.getcompletion("Deskmate delete ", "cmdline") -- refreshes the id cache in the background
  H.wait("session ids for completion", function()
    return vim.list_contains(vim.fn.getcompletion("Deskmate delete ", "cmdline"), first.sessionId)
  end)
  vim.cmd("Deskmate switch " .. first.sessionId)
  H.wait("the switch", function()
    return H.chat_text():find("first answer", 1, true)
  end)
  vim.ui.select = function()
    error("no confirmation expected with !")
  end
  vim.cmd("Deskmate! delete " .. first.sessionId)
  H.wait("the deletion reported", function()
    return #H.notified("deskmate: deleted", vim.log.levels.INFO) == 2
  end)
  -- It was the folder's default session: the folder gets it back, empty.
  H.eq({}, H.exec("deskmate.getSession", { sessionId = first.sessionId }).messages, "history gone")
  for _, s in ipairs(list()) do
    if s.sessionId == first.sessionId then
      H.eq(0, s.messageCount, "messages of the deleted session")
    end
  end
  H.wait("the chat emptied", function()
    return H.chat_text() == ""
  end)
end)

H.run()
