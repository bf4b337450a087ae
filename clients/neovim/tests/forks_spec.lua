-- Forks from the chat, as a user works: the cursor on a message, then :Deskmate fork, :Deskmate
-- edit (a buffer opens; :w resends) and :Deskmate retry. Both branches are checked in the daemon.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local chat = require("deskmate.chat")

local function contents(s)
  return vim.tbl_map(function(m)
    return m.content
  end, s.messages)
end

local function winbar()
  return vim.wo[vim.fn.win_findbuf(chat.find(H.root()).buf)[1]].winbar
end

local function now_showing(id)
  H.wait("the chat showing " .. id, function()
    local view = chat.find(H.root())
    return view.session_id == id and not require("deskmate.ask").running(H.root())
  end)
end

local source, answers

H.test("two turns asked; :Deskmate fork on the first answer branches there", function()
  H.ask("one")
  H.ask("two")
  source = H.session()
  answers = contents(source)
  H.eq({ "one", "You asked: one. I see 0 earlier messages.", "two", "You asked: two. I see 2 earlier messages." }, answers, "history")
  H.cursor_on("I see 0 earlier messages")
  vim.cmd("Deskmate fork")
  H.wait("the fork in the chat", function()
    local view = chat.find(H.root())
    return view.session_id ~= source.sessionId and view.forked_from
  end)
  local fork = H.session()
  H.eq({ sessionId = source.sessionId, messageId = source.messages[2].id }, fork.forkedFrom, "lineage")
  H.eq({ answers[1], answers[2] }, contents(fork), "the fork's history")
  H.truthy(not H.chat_text():find("two", 1, true), "the chat shows only the first turn")
  H.contains(winbar(), "fork of " .. source.sessionId, "winbar")
  H.eq(answers, contents(H.session(source.sessionId)), "source untouched")
  H.eq(1, #H.notified("deskmate: forked into", vim.log.levels.INFO), "the fork reported")
end)

H.test(":Deskmate edit opens the question; :w resends it in a fork", function()
  vim.cmd("Deskmate switch " .. source.sessionId)
  now_showing(source.sessionId)
  H.contains(winbar(), "1 fork", "the source's winbar counts its forks")
  H.cursor_on("two")
  vim.cmd("Deskmate edit")
  local buf = vim.api.nvim_get_current_buf()
  H.eq({ "two" }, vim.api.nvim_buf_get_lines(buf, 0, -1, false), "the question to edit")
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "two, reworded" })
  vim.cmd("write")
  H.wait("the edited question answered in a fork", function()
    local view = chat.find(H.root())
    return view.session_id ~= source.sessionId
      and not require("deskmate.ask").running(H.root())
      and view.forked_from
      and H.chat_text():find("You asked: two, reworded. I see 2 earlier messages.", 1, true)
  end)
  H.truthy(not vim.api.nvim_buf_is_valid(buf), "the edit buffer is gone")
  H.eq(
    table.concat({
      "## You\n\none",
      "## Deskmate\n\n" .. answers[2],
      "## You\n\ntwo, reworded",
      "## Deskmate\n\nYou asked: two, reworded. I see 2 earlier messages.",
    }, "\n\n\n"),
    H.chat_text(),
    "the chat shows the fork"
  )
  local fork = H.session()
  H.eq({ answers[1], answers[2], "two, reworded", "You asked: two, reworded. I see 2 earlier messages." }, contents(fork), "the fork")
  H.eq(source.messages[3].id, fork.forkedFrom.messageId, "forked at the edited question")
  H.eq(answers, contents(H.session(source.sessionId)), "source untouched")
end)

H.test(":Deskmate retry on an answer asks its question again in a fork; both answers are kept", function()
  vim.cmd("Deskmate switch " .. source.sessionId)
  now_showing(source.sessionId)
  H.cursor_on("I see 2 earlier messages")
  vim.cmd("Deskmate retry")
  H.wait("the retried answer in a fork", function()
    local view = chat.find(H.root())
    return view.session_id ~= source.sessionId and not require("deskmate.ask").running(H.root()) and view.forked_from
  end)
  local fork = H.session()
  H.eq(answers, contents(fork), "same question, a new answer (the test model answers alike)")
  H.truthy(fork.messages[4].id ~= source.messages[4].id, "a new answer message")
  H.eq({ sessionId = source.sessionId, messageId = source.messages[3].id }, fork.forkedFrom, "lineage")
  local held = H.session(source.sessionId)
  H.eq(answers, contents(held), "source untouched")
  H.eq(3, #held.forks, "the source lists its three forks")
  local calls = H.stub_select(function()
    return nil
  end)
  vim.cmd("Deskmate sessions")
  H.wait("the picker", function()
    return #calls == 1
  end)
  local forks_shown = vim.tbl_filter(function(line)
    return line:find("fork of " .. source.sessionId, 1, true) ~= nil
  end, calls[1].shown)
  H.eq(3, #forks_shown, "forks marked in the session picker")
end)

H.test("outside a message the user is told what to do", function()
  vim.cmd("enew")
  vim.cmd("Deskmate edit")
  H.truthy(#H.notified("put the cursor on a message", vim.log.levels.ERROR) == 1, "error shown")
end)

H.run()
