-- The chat view: per workspace root, a read-only markdown buffer with the session's history and
-- a small input buffer below it (Enter sends, Shift+Enter or Ctrl-J starts a new line). Knows
-- nothing about the protocol beyond message tables.
local config = require("deskmate.config")

local M = {}

local ns = vim.api.nvim_create_namespace("deskmate.chat")
local group = vim.api.nvim_create_augroup("deskmate.chat", { clear = true })

---@class deskmate.Chat
---@field root string
---@field buf integer history buffer
---@field input integer prompt buffer
---@field session_id string?
---@field title string?
---@field status string shown in the winbar
---@field answer_mark integer? extmark where the streaming answer starts
---@field streamed string[] pieces of the streaming answer
---@field messages deskmate.ChatMessage[] the messages shown, in order, with where each starts
---@field forked_from { sessionId: string, messageId: string }? where this session was forked from
---@field fork_count integer forks made from this session
---@field summary table? the summary prompts use (a getSession summary), shown folded at the top
---@field summary_end integer? last line of the summary block
---@field next_tokens integer? tokens the next ask sends before its question

---@class deskmate.ChatMessage
---@field id string? nil for a turn streamed since the last load (the daemon knows its id)
---@field role string
---@field content string
---@field line integer 0-based line of its heading
---@field pinned boolean? always sent to the model, never summarized

---@type table<string, deskmate.Chat>
local chats = {}

-- An input buffer with text counts as modified in Neovim; an unsent question must not block :qa.
vim.api.nvim_create_autocmd({ "QuitPre", "ExitPre" }, {
  group = group,
  callback = function()
    for _, chat in pairs(chats) do
      if vim.api.nvim_buf_is_valid(chat.input) then
        vim.bo[chat.input].modified = false
      end
    end
  end,
})

local HINT = "Type a question in the prompt below and press <Enter>."

local function heading(role)
  return role == "user" and "## You" or "## Deskmate"
end

local function split(text)
  return vim.split((text or ""):gsub("\r\n", "\n"), "\n", { plain = true })
end

-- The history buffer is not modifiable by the user, so positions stay ours.
local function edit(buf, fn)
  vim.bo[buf].modifiable = true
  local ok, err = pcall(fn)
  vim.bo[buf].modifiable = false
  vim.bo[buf].modified = false
  if not ok then
    error(err, 0)
  end
end

local function is_empty(buf)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  return #lines == 1 and lines[1] == ""
end

local function show_hint(chat)
  vim.api.nvim_buf_clear_namespace(chat.buf, ns, 0, -1)
  if is_empty(chat.buf) then
    vim.api.nvim_buf_set_extmark(chat.buf, ns, 0, 0, { virt_text = { { HINT, "DeskmateHint" } } })
  end
end

-- The title cut with "…" so the rest of a `width`-cell winbar stays in view (a long question's
-- first line would otherwise push the model and status out). Neovim still cuts at %< if the
-- window narrows later.
local function fit_title(title, rest, width)
  local plain = rest:gsub("%%#[^#]*#", ""):gsub("%%%*", ""):gsub("%%%%", "%%")
  local room = width - vim.fn.strdisplaywidth(plain) - 3 -- 3: the " · " before the title
  if vim.fn.strdisplaywidth(title) <= room or room < 12 then
    return title
  end
  local cut = title
  while vim.fn.strdisplaywidth(cut) > room - 1 do
    cut = vim.fn.strcharpart(cut, 0, vim.fn.strchars(cut) - 1)
  end
  return cut .. "…"
end

local function winbar(chat, width)
  local parts = { "%#DeskmateTitle#deskmate%*" }
  local title = (chat.title and chat.title ~= "") and chat.title or (chat.session_id and "New conversation")
  if chat.model then
    table.insert(parts, "%#DeskmateModel#" .. chat.model:gsub("%%", "%%%%") .. "%*")
  end
  if chat.forked_from then
    local from = ("fork of %s"):format(chat.forked_from.sessionId)
    table.insert(parts, "%#DeskmateLineage#" .. from:gsub("%%", "%%%%") .. "%*")
  end
  if (chat.fork_count or 0) > 0 then
    local forks = ("%d fork%s"):format(chat.fork_count, chat.fork_count == 1 and "" or "s")
    table.insert(parts, "%#DeskmateLineage#" .. forks .. "%*")
  end
  if chat.summary then
    local summarized = ("%d summarized"):format(chat.summary.messageCount or 0)
    table.insert(parts, "%#DeskmateLineage#" .. summarized .. "%*")
  end
  if chat.next_tokens then
    table.insert(parts, "%#DeskmateLineage#" .. ("%d tokens next"):format(chat.next_tokens) .. "%*")
  end
  if chat.status ~= "" then
    table.insert(parts, "%#DeskmateStatus#" .. chat.status:gsub("%%", "%%%%") .. "%*")
  end
  if title then
    local rest = " " .. table.concat(parts, " · ")
    title = width and fit_title(title, rest, width) or title
    table.insert(parts, 2, "%<" .. title:gsub("%%", "%%%%"))
  end
  return " " .. table.concat(parts, " · ")
end

-- The summary block at the top of the history, closed in a fold (zo opens it).
local function fold_summary(chat)
  for _, win in ipairs(vim.fn.win_findbuf(chat.buf)) do
    vim.api.nvim_win_call(win, function()
      vim.wo[win][0].foldmethod = "manual"
      vim.cmd("silent! normal! zE")
      if chat.summary_end then
        vim.wo[win][0].foldenable = true
        vim.cmd(("silent! 1,%dfold"):format(chat.summary_end))
      end
    end)
  end
end

local function summary_lines(summary)
  local lines = {
    ("## Summary of %d earlier messages"):format(summary.messageCount or 0),
    "",
  }
  vim.list_extend(lines, split(summary.summary))
  vim.list_extend(lines, {
    "",
    "*(sent to the model in place of the messages it covers, which stay below; :Deskmate uncompact undoes it)*",
  })
  return lines
end

local function refresh_winbar(chat)
  for _, win in ipairs(vim.fn.win_findbuf(chat.buf)) do
    vim.wo[win][0].winbar = winbar(chat, vim.api.nvim_win_get_width(win))
  end
end

-- Windows whose view should follow new text: the cursor is on the last line in the current
-- window, or the last line is in view elsewhere. Anything else means the user scrolled away.
local function followers(buf)
  local last = vim.api.nvim_buf_line_count(buf)
  local current = vim.api.nvim_get_current_win()
  local wins = {}
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    local follow
    if win == current then
      follow = vim.api.nvim_win_get_cursor(win)[1] >= last
    else
      follow = vim.api.nvim_win_call(win, function()
        return vim.fn.line("w$") >= last
      end)
    end
    if follow then
      table.insert(wins, win)
    end
  end
  return wins
end

local function scroll_to_end(wins, buf)
  local last = vim.api.nvim_buf_line_count(buf)
  local line = vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ""
  for _, win in ipairs(wins) do
    if vim.api.nvim_win_is_valid(win) then
      vim.api.nvim_win_set_cursor(win, { last, math.max(0, #line - 1) })
    end
  end
end

-- Appends `lines` after the buffer's end, the first one joined to the last line.
local function append_lines(chat, lines)
  local wins = followers(chat.buf)
  edit(chat.buf, function()
    local last = vim.api.nvim_buf_line_count(chat.buf)
    local tail = vim.api.nvim_buf_get_lines(chat.buf, last - 1, last, false)[1]
    vim.api.nvim_buf_set_text(chat.buf, last - 1, #tail, last - 1, #tail, lines)
  end)
  scroll_to_end(wins, chat.buf)
end

-- Starts a new block (a heading or marker) after whatever the buffer holds.
local function append_block(chat, lines)
  if is_empty(chat.buf) then
    vim.api.nvim_buf_clear_namespace(chat.buf, ns, 0, -1)
    local wins = followers(chat.buf)
    edit(chat.buf, function()
      vim.api.nvim_buf_set_lines(chat.buf, 0, -1, false, lines)
    end)
    scroll_to_end(wins, chat.buf)
  else
    append_lines(chat, vim.list_extend({ "", "" }, lines))
  end
end

-- A failed answer says why, and how to ask again, the same live and after a reload.
local function failed_line(reason)
  return "*(failed: " .. reason:gsub("\n", " ") .. ")* — press `r` here to retry"
end

local function message_lines(message, root)
  local lines = { heading(message.role) .. (message.pinned and " · pinned" or ""), "" }
  vim.list_extend(lines, split(message.content))
  local note = message.role == "user" and type(message.context) == "table"
    and require("deskmate.context").note(message.context, nil, root)
  if note then
    vim.list_extend(lines, { "", note })
  end
  if message.error and message.error ~= vim.NIL then
    vim.list_extend(lines, { "", failed_line(message.error) })
  elseif message.status == "interrupted" then
    vim.list_extend(lines, { "", "*(interrupted)*" })
  end
  return lines
end

local function close_windows(chat)
  for _, buf in ipairs({ chat.input, chat.buf }) do
    for _, win in ipairs(vim.fn.win_findbuf(buf)) do
      if #vim.api.nvim_list_wins() > 1 then
        pcall(vim.api.nvim_win_close, win, false)
      else
        -- The chat is all there is: leave an empty buffer rather than failing.
        vim.api.nvim_win_call(win, function()
          vim.cmd.enew()
        end)
      end
    end
  end
end

local function cancel_or_close(chat)
  local ask = require("deskmate.ask")
  if ask.running(chat.root) then
    ask.cancel(chat.root)
  else
    close_windows(chat)
  end
end

local function buffer_keymaps(chat)
  local function cancel()
    require("deskmate.ask").cancel(chat.root)
  end
  for _, buf in ipairs({ chat.buf, chat.input }) do
    local function map(mode, lhs, fn, desc)
      vim.keymap.set(mode, lhs, fn, { buffer = buf, nowait = true, silent = true, desc = desc })
    end
    map("n", "q", function()
      cancel_or_close(chat)
    end, "deskmate: cancel the answer, or close the chat")
    map("n", "<C-c>", cancel, "deskmate: cancel the answer")
  end
  vim.keymap.set("n", "i", function()
    M.focus_input(chat.root)
  end, { buffer = chat.buf, nowait = true, silent = true, desc = "deskmate: type a question" })
  vim.keymap.set("n", "r", function()
    require("deskmate.forks").retry()
  end, { buffer = chat.buf, nowait = true, silent = true, desc = "deskmate: ask the question of this answer again" })
  require("deskmate.code_blocks").keymaps(chat.buf)
end

-- Names are unique: a leftover of a chat whose other half was wiped must go first.
local function name_buffer(buf, name)
  local old = vim.fn.bufnr("^" .. vim.fn.escape(name, "^$.*?/\\[]~") .. "$")
  if old ~= -1 and old ~= buf then
    pcall(vim.api.nvim_buf_delete, old, { force = true })
  end
  vim.api.nvim_buf_set_name(buf, name)
end

local function create(root)
  local buf = vim.api.nvim_create_buf(false, true)
  name_buffer(buf, "deskmate://chat" .. root)
  vim.bo[buf].filetype = "markdown"
  -- Code blocks highlighted by treesitter (each language whose parser is installed), as
  -- render-markdown.nvim and the like expect; regex syntax where there is no parser.
  pcall(vim.treesitter.start, buf, "markdown")
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].modifiable = false
  vim.b[buf].deskmate_root = root

  local input = vim.api.nvim_create_buf(false, true)
  name_buffer(input, "deskmate://prompt" .. root)
  vim.bo[input].buftype = "nofile"
  vim.bo[input].bufhidden = "hide"
  vim.bo[input].swapfile = false
  vim.b[input].deskmate_root = root
  vim.bo[input].completefunc = "v:lua.require'deskmate.chat_context'.complete"
  -- The file list narrows as the name is typed; nothing is inserted until one is picked.
  vim.bo[input].completeopt = "menu,menuone,noinsert,noselect"

  local chat = { root = root, buf = buf, input = input, status = "", streamed = {}, messages = {}, fork_count = 0 }
  local function send()
    local text = vim.trim(table.concat(vim.api.nvim_buf_get_lines(input, 0, -1, false), "\n"))
    if text == "" then
      return
    end
    local ask = require("deskmate.ask")
    if ask.running(root) then
      return vim.notify(
        "deskmate: still answering the previous question; wait for it or :Deskmate cancel.",
        vim.log.levels.WARN
      )
    end
    -- The input is the draft; the history buffer is the record.
    vim.api.nvim_buf_set_lines(input, 0, -1, false, {})
    local context, attachments = require("deskmate.chat_context").take(root, text)
    ask.ask({ root = root, question = text, context = context, attachments = attachments })
    M.refresh_context(root)
  end
  local function map(mode, lhs, fn, desc)
    vim.keymap.set(mode, lhs, fn, { buffer = input, nowait = true, silent = true, desc = desc })
  end
  map("n", "<CR>", send, "deskmate: send the question")
  map("i", "<CR>", function()
    -- Enter takes a completion the user picked; otherwise it sends.
    if vim.fn.pumvisible() == 1 and vim.fn.complete_info({ "selected" }).selected >= 0 then
      return vim.api.nvim_feedkeys(vim.keycode("<C-y>"), "n", false)
    end
    send()
  end, "deskmate: send the question")
  -- A new line in the question: Shift+Enter where the terminal tells it apart, Ctrl-J anywhere.
  map("i", "<S-CR>", "<CR>", "deskmate: new line")
  map("i", "<C-c>", function()
    require("deskmate.ask").cancel(root)
  end, "deskmate: cancel the answer")
  map({ "i", "n" }, "<C-d>", function()
    M.drop_context(root)
  end, "deskmate: do not send a piece of context")
  -- @ offers the workspace's files (completefunc); the menu narrows as the name is typed.
  map("i", "@", "@<C-x><C-u>", "deskmate: @ a workspace file")
  vim.api.nvim_create_autocmd({ "BufEnter", "TextChanged", "TextChangedI" }, {
    group = group,
    buffer = input,
    callback = function()
      M.refresh_context(root)
    end,
  })
  -- A half-typed question must not block :quit ("No write since last change").
  vim.api.nvim_create_autocmd({ "BufModifiedSet", "InsertLeave", "TextChanged", "TextChangedI" }, {
    group = group,
    buffer = input,
    callback = function()
      if vim.bo[input].modified then
        vim.bo[input].modified = false
      end
    end,
  })
  buffer_keymaps(chat)

  -- Closing one of the pair closes the other.
  vim.api.nvim_create_autocmd("WinClosed", {
    group = group,
    callback = function(ev)
      local win = tonumber(ev.match)
      local closed = win and vim.api.nvim_win_is_valid(win) and vim.api.nvim_win_get_buf(win)
      if closed == buf or closed == input then
        vim.schedule(function()
          if M.is_open(root) and (#vim.fn.win_findbuf(buf) == 0 or #vim.fn.win_findbuf(input) == 0) then
            close_windows(chat)
          end
        end)
      end
    end,
  })
  show_hint(chat)
  chats[root] = chat
  return chat
end

--- The chat of `root`, created (empty) when needed.
---@param root string
---@return deskmate.Chat
function M.get(root)
  local chat = chats[root]
  if chat and vim.api.nvim_buf_is_valid(chat.buf) and vim.api.nvim_buf_is_valid(chat.input) then
    return chat
  end
  return create(root)
end

---@param root string
---@return deskmate.Chat?
function M.find(root)
  return chats[root]
end

--- Replaces the history with `session` (a deskmate.getSession result).
---@param root string
---@param session table
function M.render(root, session)
  local chat = M.get(root)
  chat.session_id = session.sessionId ~= vim.NIL and session.sessionId or nil
  chat.title = session.title ~= vim.NIL and session.title or nil
  chat.model = type(session.model) == "string" and session.model or chat.model
  local lineage = session.forkedFrom
  chat.forked_from = type(lineage) == "table" and lineage or nil
  chat.fork_count = type(session.forks) == "table" and #session.forks or 0
  chat.answer_mark = nil
  chat.messages = {}
  chat.summary, chat.summary_end = nil, nil
  for _, summary in ipairs(type(session.summaries) == "table" and session.summaries or {}) do
    if summary.active then
      chat.summary = summary
    end
  end
  local next_ask = session.nextAskTokens
  chat.next_tokens = type(next_ask) == "number" and next_ask or nil
  local lines = {}
  if chat.summary then
    lines = summary_lines(chat.summary)
    chat.summary_end = #lines
  end
  for _, message in ipairs(session.messages or {}) do
    if message.role == "user" or message.role == "assistant" then
      if #lines > 0 then
        vim.list_extend(lines, { "", "" })
      end
      table.insert(chat.messages, {
        id = message.id,
        role = message.role,
        content = message.content,
        line = #lines,
        pinned = message.pinned == true,
      })
      vim.list_extend(lines, message_lines(message, root))
    end
  end
  edit(chat.buf, function()
    vim.api.nvim_buf_set_lines(chat.buf, 0, -1, false, lines)
  end)
  fold_summary(chat)
  show_hint(chat)
  scroll_to_end(vim.fn.win_findbuf(chat.buf), chat.buf)
  refresh_winbar(chat)
end

-- The title, lineage and fork count of `session` (a deskmate.getSession result) in the winbar.
local function take_labels(chat, session)
  chat.title = session.title ~= vim.NIL and session.title or nil
  local lineage = session.forkedFrom
  chat.forked_from = type(lineage) == "table" and lineage or nil
  chat.fork_count = type(session.forks) == "table" and #session.forks or 0
  refresh_winbar(chat)
end

--- Updates the winbar from `session` (a deskmate.getSession result), the history untouched.
---@param root string
---@param session table
function M.set_labels(root, session)
  local chat = chats[root]
  if chat then
    take_labels(chat, session)
  end
end

--- Adds stored `messages` below the history (turns asked in another window), without
--- redrawing it: a window scrolled up stays where it is; one at the end follows.
---@param root string
---@param messages table[] deskmate.getSession messages
---@param session table? the getSession result they came in (for the winbar)
function M.add_messages(root, messages, session)
  local chat = M.get(root)
  for _, message in ipairs(messages) do
    if message.role == "user" or message.role == "assistant" then
      local first = is_empty(chat.buf) and 0 or vim.api.nvim_buf_line_count(chat.buf) + 1
      table.insert(chat.messages, { id = message.id, role = message.role, content = message.content, line = first })
      append_block(chat, message_lines(message))
    end
  end
  if session then
    take_labels(chat, session)
  end
end

--- Brings the history up to `session` (a whole deskmate.getSession result): when what is
--- shown is how it starts, the shown messages take their ids and the rest is added below;
--- otherwise (it was rewritten elsewhere) the history is drawn again.
---@param root string
---@param session table
function M.catch_up(root, session)
  local chat = M.get(root)
  local stored = {}
  for _, message in ipairs(session.messages or {}) do
    if message.role == "user" or message.role == "assistant" then
      table.insert(stored, message)
    end
  end
  local shown = chat.messages
  local prefix = #stored >= #shown
  for i = 1, math.min(#shown, #stored) do
    local a, b = shown[i], stored[i]
    if a.role ~= b.role or (a.id and a.id ~= b.id) then
      prefix = false
      break
    end
  end
  if not prefix then
    return M.render(root, session)
  end
  for i, message in ipairs(shown) do
    message.id = stored[i].id
  end
  M.add_messages(root, vim.list_slice(stored, #shown + 1), session)
end

--- Shows a question and an empty answer section that M.append fills.
---@param root string
---@param question string
---@param note string? a line saying what context went along
function M.begin_turn(root, question, note)
  local chat = M.get(root)
  local lines = { heading("user"), "" }
  vim.list_extend(lines, split(question))
  if note then
    vim.list_extend(lines, { "", note })
  end
  vim.list_extend(lines, { "", heading("assistant"), "", "" })
  -- append_block starts the block on the first line of an empty buffer, else two lines below its end.
  local first = is_empty(chat.buf) and 0 or vim.api.nvim_buf_line_count(chat.buf) + 1
  table.insert(chat.messages, { role = "user", content = question, line = first })
  table.insert(chat.messages, { role = "assistant", content = "", line = first + #lines - 3 })
  append_block(chat, lines)
  local last = vim.api.nvim_buf_line_count(chat.buf)
  chat.answer_mark = vim.api.nvim_buf_set_extmark(chat.buf, ns, last - 1, 0, { right_gravity = false })
  chat.streamed = {}
end

--- The index in `chat.messages` of the message shown at the 0-based `line`, if any.
---@param root string
---@param line integer
---@return integer?
function M.message_index(root, line)
  local chat = chats[root]
  local found
  for index, message in ipairs(chat and chat.messages or {}) do
    if message.line <= line then
      found = index
    end
  end
  return found
end

--- Removes the message at `index` and everything after it from the view (an edit or retry
--- continues from there, in a fork).
---@param root string
---@param index integer?
function M.truncate(root, index)
  local chat = M.get(root)
  local message = index and chat.messages[index]
  local from = message and math.max(0, message.line - 2) or 0
  for i = #chat.messages, (message and index or 1), -1 do
    table.remove(chat.messages, i)
  end
  edit(chat.buf, function()
    vim.api.nvim_buf_set_lines(chat.buf, from, -1, false, {})
  end)
  show_hint(chat)
end

--- Appends a piece of the streaming answer.
---@param root string
---@param text string
function M.append(root, text)
  local chat = chats[root]
  if not chat or not chat.answer_mark or text == "" then
    return
  end
  table.insert(chat.streamed, text)
  append_lines(chat, split(text))
end

--- Ends the answer section. When the final `answer` differs from what streamed (a missed
--- delta), the section is rewritten with it.
---@param root string
---@param outcome { answer: string?, interrupted: boolean?, error: string?, session_id: string? }
function M.end_turn(root, outcome)
  local chat = chats[root]
  if not chat or not chat.answer_mark then
    return
  end
  local answer = outcome.answer
  if answer and answer ~= vim.NIL and answer ~= table.concat(chat.streamed) then
    local pos = vim.api.nvim_buf_get_extmark_by_id(chat.buf, ns, chat.answer_mark, {})
    local wins = followers(chat.buf)
    edit(chat.buf, function()
      vim.api.nvim_buf_set_lines(chat.buf, pos[1], -1, false, split(answer))
    end)
    scroll_to_end(wins, chat.buf)
  end
  vim.api.nvim_buf_del_extmark(chat.buf, ns, chat.answer_mark)
  chat.answer_mark = nil
  if outcome.error then
    append_block(chat, { failed_line(outcome.error) })
  elseif outcome.interrupted then
    append_block(chat, { "*(interrupted)*" })
  end
  if outcome.session_id then
    chat.session_id = outcome.session_id
  end
end

--- Sets the model shown in the chat's winbar.
---@param root string
---@param model string
function M.set_model(root, model)
  local chat = chats[root]
  if chat then
    chat.model = model
    refresh_winbar(chat)
  end
end

--- Sets the status shown in the chat's winbar ("" clears it).
---@param root string
---@param status string
function M.set_status(root, status)
  local chat = chats[root]
  if chat then
    chat.status = status
    refresh_winbar(chat)
  end
end

---@param root string
---@return boolean
function M.is_open(root)
  local chat = chats[root]
  return chat ~= nil
    and vim.api.nvim_buf_is_valid(chat.buf)
    and #vim.fn.win_findbuf(chat.buf) > 0
end

local function width()
  local w = config.options.chat.width or 0.4
  if w <= 1 then
    w = math.floor(vim.o.columns * w)
  end
  return math.max(20, math.floor(w))
end

--- Opens the chat windows at the right edge. `focus` puts the cursor in the prompt.
---@param root string
---@param focus boolean?
function M.open(root, focus)
  local chat = M.get(root)
  if not M.is_open(root) then
    local win = vim.api.nvim_open_win(chat.buf, false, { split = "right", win = -1, width = width() })
    for option, value in pairs({
      wrap = true,
      linebreak = true,
      number = false,
      relativenumber = false,
      signcolumn = "no",
      foldenable = false,
      spell = false,
      winfixwidth = true,
    }) do
      vim.wo[win][0][option] = value
    end
    vim.wo[win][0].winbar = winbar(chat, vim.api.nvim_win_get_width(win))
    fold_summary(chat)
    local input_win = vim.api.nvim_open_win(chat.input, false, {
      split = "below",
      win = win,
      height = config.options.chat.input_height or 3,
    })
    for option, value in pairs({
      number = false,
      relativenumber = false,
      signcolumn = "no",
      winfixheight = true,
      wrap = true,
    }) do
      vim.wo[input_win][0][option] = value
    end
    scroll_to_end({ win }, chat.buf)
  end
  M.refresh_context(root)
  if focus then
    M.focus_input(root)
  end
end

--- Shows above the prompt what goes along with the question being typed (its chips).
---@param root string
function M.refresh_context(root)
  local chat = chats[root]
  if not chat or not vim.api.nvim_buf_is_valid(chat.input) then
    return
  end
  local chat_context = require("deskmate.chat_context")
  chat_context.forget_dropped_if_moved(root)
  local question = table.concat(vim.api.nvim_buf_get_lines(chat.input, 0, -1, false), "\n")
  local labels = chat_context.labels(root, question)
  chat.context_labels = labels
  local text
  if #labels == 0 then
    text = " %#DeskmateHint#no code goes along · @ adds a file · #buffers the open buffers%*"
  else
    local chips = vim.tbl_map(function(label)
      return "%#DeskmateChip#[" .. label:gsub("%%", "%%%%") .. "]%*"
    end, labels)
    text = " with " .. table.concat(chips, " ") .. " %#DeskmateHint#· <C-d> drops · @ adds a file%*"
  end
  for _, win in ipairs(vim.fn.win_findbuf(chat.input)) do
    vim.wo[win][0].winbar = text
  end
end

--- Lets the user pick a piece of context not to send (the editor's code, or an added file).
---@param root string
function M.drop_context(root)
  local chat_context = require("deskmate.chat_context")
  local pieces = chat_context.droppable(root)
  if #pieces == 0 then
    return vim.notify("deskmate: no context to drop (an @file in the question goes when you delete it).")
  end
  local function drop(piece)
    if piece then
      chat_context.drop(root, piece.id)
      M.refresh_context(root)
    end
  end
  if #pieces == 1 then
    return drop(pieces[1])
  end
  vim.ui.select(pieces, {
    prompt = "Do not send:",
    format_item = function(piece)
      return piece.label
    end,
  }, drop)
end

--- Puts the cursor in the prompt, in Insert mode.
---@param root string
function M.focus_input(root)
  local chat = chats[root]
  local win = chat and vim.fn.win_findbuf(chat.input)[1]
  if win then
    vim.api.nvim_set_current_win(win)
    vim.cmd.startinsert({ bang = true })
  end
end

---@param root string
function M.close(root)
  local chat = chats[root]
  if chat then
    close_windows(chat)
  end
end

return M
