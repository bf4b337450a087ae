-- Live sessions: a turn asked in another window (here `deskmate ask` in a terminal, another
-- process on the same store) shows up in the open chat as it is stored, without a reload,
-- and a chat scrolled up stays where it is; an automatic title reaches the winbar.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local chat = require("deskmate.chat")

--- Asks `question` with the terminal CLI, in the workspace, on the specs' store; waits for it.
local function ask_in_terminal(question)
  local env = {
    DESKMATE_BASE_URL = H.env.base_url,
    DESKMATE_MODEL = "test-model",
    DESKMATE_DATA_DIR = H.env.data_dir,
    PATH = vim.env.PATH,
    HOME = vim.env.HOME,
  }
  local result = vim.system({ "deskmate", "ask", question }, { cwd = vim.fn.getcwd(), env = env, clear_env = true }):wait(30000)
  H.eq(0, result.code, "deskmate ask exit code (" .. (result.stderr or "") .. ")")
  return result.stdout
end

local function count(text, needle)
  local n, from = 0, 1
  while true do
    local at = text:find(needle, from, true)
    if not at then
      return n
    end
    n, from = n + 1, at + #needle
  end
end

H.test("a turn asked in a terminal appears in the open chat, the chat's place kept", function()
  H.ask("[[answer:first, from the editor]] one")
  local view = chat.find(H.root())
  local win = vim.fn.win_findbuf(view.buf)[1]
  vim.api.nvim_set_current_win(win)
  vim.api.nvim_win_set_cursor(win, { 1, 0 }) -- the user scrolled up to read
  ask_in_terminal("[[answer:second, from the terminal]] two")
  H.wait("the terminal's turn in the chat", function()
    return H.chat_text():find("second, from the terminal", 1, true)
  end, 5000)
  local text = H.chat_text()
  H.contains(text, "## You\n\n[[answer:second, from the terminal]] two\n\n## Deskmate\n\nsecond, from the terminal")
  H.eq(1, count(text, "first, from the editor]] one"), "the editor's own turn, shown once")
  H.eq(1, vim.api.nvim_win_get_cursor(win)[1], "the cursor stays where the user put it")
end)

H.test("the next terminal turn is added after it, and the editor asks on in the same session", function()
  local view = chat.find(H.root())
  local win = vim.fn.win_findbuf(view.buf)[1]
  vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(view.buf), 0 }) -- at the end: follows
  ask_in_terminal("[[answer:third, from the terminal]] three")
  H.wait("the third turn", function()
    return H.chat_text():find("third, from the terminal", 1, true)
  end, 5000)
  H.eq(vim.api.nvim_buf_line_count(view.buf), vim.api.nvim_win_get_cursor(win)[1], "the window followed")
  local r = H.ask("and now?")
  H.contains(r.answer, "I see 6 earlier messages.", "the editor's next answer saw all turns")
  local text = H.chat_text()
  H.eq(4, count(text, "## You"), "every question shown once")
  H.eq(4, count(text, "## Deskmate"), "every answer shown once")
  H.eq(8, #view.messages, "the chat knows every message")
end)

H.test("a new session's automatic title reaches the winbar once the daemon reports it", function()
  local options = vim.deepcopy(require("deskmate.config").options)
  options.settings.autoTitle = true
  require("deskmate").setup(options)
  vim.cmd("Deskmate new")
  local view = chat.find(H.root())
  H.wait("the new session in the chat", function()
    return view.session_id and #view.messages == 0
  end)
  -- The test model obeys the directive for the title too: the title is the answer.
  H.ask("[[answer:Adding two numbers]] how do I add?")
  H.wait("the automatic title", function()
    return view.title == "Adding two numbers"
  end)
  H.contains(vim.wo[vim.fn.win_findbuf(view.buf)[1]].winbar, "Adding two numbers", "the winbar")
end)

H.run()
