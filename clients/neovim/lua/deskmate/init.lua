-- deskmate: a thin Neovim client for the deskmate daemon. See :help deskmate.
local config = require("deskmate.config")

local M = {}

M.version = "0.1.0"

local mapped = {} ---@type { mode: string, lhs: string }[]

local function set_keymaps(keymaps)
  for _, m in ipairs(mapped) do
    pcall(vim.keymap.del, m.mode, m.lhs)
  end
  mapped = {}
  local function map(mode, lhs, rhs, desc)
    vim.keymap.set(mode, lhs, rhs, { desc = desc, silent = true })
    table.insert(mapped, { mode = mode, lhs = lhs })
  end
  if keymaps.ask then
    map("n", keymaps.ask, "<Cmd>Deskmate ask<CR>", "deskmate: ask a question")
    -- ":" from Visual mode inserts '<,'>, so the selection goes along.
    map("x", keymaps.ask, ":Deskmate ask<CR>", "deskmate: ask about the selection")
  end
  for _, action in ipairs({ "chat", "sessions", "new", "cancel", "export" }) do
    if keymaps[action] then
      map("n", keymaps[action], "<Cmd>Deskmate " .. action .. "<CR>", "deskmate: " .. action)
    end
  end
end

--- Configures the plugin. Every option is optional; see :help deskmate-setup.
--- Calling it again updates running daemons' settings.
---@param opts table?
function M.setup(opts)
  config.set(opts)
  local client = require("deskmate.client")
  client.register()
  client.push_settings()
  set_keymaps(config.options.keymaps or {})
end

local function root()
  return require("deskmate.workspace").root(0)
end

--- Asks `question`; with `range` ({line1, line2}) the buffer's lines or visual selection go along.
---@param question string?
---@param range integer[]?
function M.ask(question, range)
  local context
  if range then
    context = require("deskmate.context").from_range(0, range[1], range[2])
  end
  local r = root()
  local function go(q)
    if q and vim.trim(q) ~= "" then
      require("deskmate.ask").ask({ root = r, question = q, context = context })
    end
  end
  if question and vim.trim(question) ~= "" then
    go(question)
  else
    vim.ui.input({ prompt = context and "Ask about the selection: " or "Ask deskmate: " }, go)
  end
end

--- Opens the chat of the current workspace, or closes it when open.
function M.chat()
  local r = root()
  local chat = require("deskmate.chat")
  if chat.is_open(r) then
    return chat.close(r)
  end
  chat.open(r, true)
  local ask = require("deskmate.ask")
  if not ask.running(r) then
    ask.load(r)
  end
end

function M.sessions()
  require("deskmate.sessions").pick(root())
end

---@param title string?
function M.new(title)
  require("deskmate.sessions").new(root(), title)
end

---@param id string?
function M.delete(id)
  require("deskmate.sessions").delete(root(), id)
end

---@param id string?
function M.restore(id)
  if id == nil or id == "" then
    return M.trash()
  end
  require("deskmate.sessions").restore(root(), id)
end

function M.trash()
  require("deskmate.sessions").trash(root())
end

--- Keeps `text` in the project's memory; without it, asks for the text.
---@param text string?
function M.remember(text)
  local r = root()
  if text and text ~= "" then
    return require("deskmate.memory").remember(r, text)
  end
  vim.ui.input({ prompt = "Remember in this project: " }, function(input)
    if input and input:match("%S") then
      require("deskmate.memory").remember(r, input)
    end
  end)
end

function M.memories()
  require("deskmate.memory").pick(root())
end

---@param id string?
function M.forget(id)
  if id == nil or id == "" then
    return M.memories()
  end
  require("deskmate.memory").forget(root(), id)
end

---@param id string
function M.switch(id)
  require("deskmate.sessions").switch(root(), id)
end

--- In the chat: a new session up to the message under the cursor (|:Deskmate-fork|).
---@param title string?
function M.fork(title)
  require("deskmate.forks").fork(title)
end

--- In the chat: edit the question under the cursor; writing it resends it in a fork.
function M.edit()
  require("deskmate.forks").edit()
end

--- Ask the question of the answer under the cursor (or of the last answer) again, in a fork.
function M.retry()
  require("deskmate.forks").retry()
end

--- Sends a workspace file along with the next question typed in the chat.
---@param path string
function M.add(path)
  local r = root()
  if path == nil or vim.trim(path) == "" then
    return vim.notify("deskmate: name a file: :Deskmate add {file}", vim.log.levels.ERROR)
  end
  if require("deskmate.chat_context").add(r, vim.trim(path)) then
    require("deskmate.chat").refresh_context(r)
    vim.notify(("deskmate: %s goes along with the next question."):format(vim.trim(path)))
  end
end

--- Uses `name` for this workspace's asks; without it, picks from the server's models.
---@param name string?
function M.model(name)
  local models = require("deskmate.models")
  if name then
    return models.set(root(), name)
  end
  models.pick(root())
end

function M.cancel()
  require("deskmate.ask").cancel(root())
end

--- Searches this workspace's sessions (`all`: every session); a chosen result opens at its message.
---@param query string?
---@param all boolean?
function M.search(query, all)
  require("deskmate.find").search(root(), query, { all = all })
end

---@param title string?
function M.rename(title)
  require("deskmate.find").rename(root(), title)
end

--- `words`: tags to add, and -tag to remove.
---@param words string
function M.tag(words)
  require("deskmate.find").tag(root(), words)
end

--- In the chat, pins the message under the cursor; elsewhere, the session.
---@param pinned boolean
function M.pin(pinned)
  local compaction = require("deskmate.compaction")
  if compaction.in_chat(root()) then
    return compaction.pin_message(pinned)
  end
  require("deskmate.find").pin(root(), pinned)
end

---@param instructions string?
function M.compact(instructions)
  require("deskmate.compaction").compact(root(), instructions)
end

function M.uncompact()
  require("deskmate.compaction").uncompact(root())
end

function M.export()
  require("deskmate.sessions").export(root())
end

--- Status for a statusline: "" when idle, else what the daemon reports (e.g. "answering…").
---@return string
function M.status()
  local chat = require("deskmate.chat").find(root())
  return chat and chat.status or ""
end

return M
