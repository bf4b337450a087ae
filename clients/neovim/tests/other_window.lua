-- Neovim as the other window of another client's end-to-end test (clients/vscode's e2e runs it
-- beside code-server): headless Neovim with the plugin, showing session SESSION_ID of the
-- workspace it runs in, on the same store.
--
--   nvim --headless --clean -l other_window.lua ask SESSION_ID QUESTION
--     asks QUESTION in that session through the plugin; exits once the answer is stored.
--   nvim --headless --clean -l other_window.lua wait SESSION_ID TEXT
--     prints "ready" once its chat shows the session, then waits (60 s at most) until TEXT
--     appears in the chat: a turn asked in the other client, shown live, without a reload.
--
-- Exits 0 when it did, 1 with the reason on stdout (TAP-like, as the specs). Environment as
-- for the specs (helpers.lua): DESKMATE_TEST_BASE_URL, DESKMATE_TEST_DATA_DIR.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local mode, session_id, text = arg[1], arg[2], arg[3]
if not (mode == "ask" or mode == "wait") or not session_id or not text then
  io.stdout:write("usage: other_window.lua ask|wait SESSION_ID TEXT\n")
  os.exit(2)
end

--- The chat open on `session_id`, as :Deskmate chat and :Deskmate switch would show it.
local function show_session()
  local root = H.root()
  vim.cmd("Deskmate chat")
  local switched, failure = false, nil
  require("deskmate.sessions").switch(root, session_id, function(err)
    switched, failure = true, err
  end)
  H.wait("the switch to " .. session_id, function()
    return switched
  end, 30000)
  assert(not failure, failure and failure.message)
  H.wait("the chat showing " .. session_id, function()
    local view = require("deskmate.chat").find(root)
    return view and view.session_id == session_id
  end, 30000)
end

if mode == "ask" then
  H.test("asks in the other client's session", function()
    show_session()
    local result, err = H.ask(text, { timeout = 60000 })
    assert(not err, err and err.message)
    H.eq(session_id, result.sessionId, "the session asked in")
    io.stdout:write("answer: " .. result.answer:gsub("\n", " ") .. "\n")
  end)
else
  H.test("shows the turn asked in the other client, live", function()
    show_session()
    io.stdout:write("ready\n")
    io.stdout:flush()
    H.wait("the other client's turn in the chat", function()
      return H.chat_text():find(text, 1, true)
    end, 60000)
  end)
end

H.run()
