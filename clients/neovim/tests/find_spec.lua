-- Finding old conversations as a user would: :Deskmate rename, tag and pin the session, then
-- :Deskmate search picks a result (through vim.ui.select) and the chat opens at that message.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local chat = require("deskmate.chat")

local function listed()
  return H.exec("deskmate.listSessions", { workspaceUri = vim.uri_from_fname(H.root()) }).sessions
end

local first_id

H.test("two sessions; :Deskmate rename, tag and pin the first", function()
  H.ask("How does parse_args read the verbose flag?")
  H.ask("And the Größe of the buffer?")
  first_id = H.exec("deskmate.getSession", { workspaceUri = vim.uri_from_fname(H.root()) }).sessionId
  vim.cmd("Deskmate rename Parser notes")
  H.wait("the rename", function()
    return #H.notified('renamed to "Parser notes"') > 0
  end)
  vim.cmd("Deskmate tag cli work")
  H.wait("the tags", function()
    return #H.notified("tags: cli, work") > 0
  end)
  vim.cmd("Deskmate tag -work")
  H.wait("a tag removed", function()
    return #H.notified("tags: cli.") > 0
  end)
  vim.cmd("Deskmate pin")
  H.wait("the pin", function()
    return #H.notified("deskmate: pinned.") > 0
  end)
  vim.cmd("Deskmate new")
  H.wait("the new session", function()
    return #H.notified("new session") > 0
  end)
  H.ask("Where is the config file loaded?")
  local sessions = listed()
  H.eq(first_id, sessions[1].sessionId, "the pinned session first")
  H.eq({ "Parser notes", { "cli" }, true }, { sessions[1].title, sessions[1].tags, sessions[1].pinned }, "its labels")
  local calls = H.stub_select(function()
    return nil
  end)
  vim.cmd("Deskmate sessions")
  H.wait("the picker", function()
    return #calls > 0
  end)
  H.contains(calls[1].shown[1], "📌 Parser notes", "the picker shows the pin and title")
  H.contains(calls[1].shown[1], "#cli", "and the tags")
end)

H.test(":Deskmate search picks a result and the chat opens at that message", function()
  local calls = H.stub_select(function(items)
    return items[1]
  end)
  vim.cmd("Deskmate search verbose")
  H.wait("the search results", function()
    return #calls > 0
  end)
  H.eq("deskmate.search", calls[1].kind, "the picker kind")
  H.contains(calls[1].shown[1], "Parser notes", "the result's title")
  H.contains(calls[1].shown[1], "**verbose**", "the highlighted snippet")
  local hit = calls[1].items[1]
  H.wait("the chat showing the found session", function()
    local view = chat.find(H.root())
    return view and view.session_id == first_id and not require("deskmate.ask").running(H.root())
  end)
  local view = chat.find(H.root())
  local win = vim.fn.win_findbuf(view.buf)[1]
  H.wait("the cursor on the message", function()
    return vim.api.nvim_get_current_win() == win
  end)
  local line = vim.api.nvim_buf_get_lines(view.buf, 0, -1, false)[vim.api.nvim_win_get_cursor(win)[1]]
  local index = chat.message_index(H.root(), vim.api.nvim_win_get_cursor(win)[1] - 1)
  H.eq(hit.messageId, view.messages[index].id, "the cursor is on the found message")
  H.truthy(line ~= nil, "a line under the cursor")
end)

H.test("Unicode, phrases and nothing found", function()
  local calls = H.stub_select(function()
    return nil
  end)
  vim.cmd("Deskmate search GRÖßE")
  H.wait("the results", function()
    return #calls > 0
  end)
  H.contains(calls[1].shown[1], "Größe", "found across case")
  vim.cmd('Deskmate search "file loaded config"')
  H.wait("nothing found", function()
    return #H.notified("nothing found") > 0
  end)
end)

H.run()
