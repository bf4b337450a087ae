-- What goes along with a question typed in the chat: the code in view in the window the user
-- was in last (unless dropped), files named with @path in the question or added with
-- :Deskmate add, and #buffer / #buffers (the open buffers of the workspace's files, as they
-- are, saved or not).
local context = require("deskmate.context")
local workspace = require("deskmate.workspace")

local M = {}

local group = vim.api.nvim_create_augroup("deskmate.chat_context", { clear = true })

---@type integer? the window of code the user was in last
local source_win

local function is_code(buf)
  return vim.api.nvim_buf_is_valid(buf)
    and vim.bo[buf].buftype == ""
    and not vim.api.nvim_buf_get_name(buf):match("^deskmate://")
    and vim.b[buf].deskmate_root == nil
end

vim.api.nvim_create_autocmd({ "WinLeave", "BufLeave" }, {
  group = group,
  callback = function()
    local win = vim.api.nvim_get_current_win()
    if is_code(vim.api.nvim_win_get_buf(win)) then
      source_win = win
    end
  end,
})

--- The window of code the question is about: the current one if it holds code, else the last.
---@return integer?
function M.source_window()
  local current = vim.api.nvim_get_current_win()
  if is_code(vim.api.nvim_win_get_buf(current)) then
    return current
  end
  if source_win and vim.api.nvim_win_is_valid(source_win) and is_code(vim.api.nvim_win_get_buf(source_win)) then
    return source_win
  end
  return nil
end

---@class deskmate.ChatContextState
---@field dropped string? the URI of the editor's file the user dropped
---@field files { uri: string, label: string }[] files added with :Deskmate add

---@type table<string, deskmate.ChatContextState>
local states = {}

local function state(root)
  states[root] = states[root] or { files = {} }
  return states[root]
end

--- The lines in view in the source window, as a deskmate.ask context (nil without one).
---@return table?
function M.editor_context()
  local win = M.source_window()
  if not win then
    return nil
  end
  local buf = vim.api.nvim_win_get_buf(win)
  local view = vim.api.nvim_win_call(win, function() -- returns one value only
    return { vim.fn.line("w0"), vim.fn.line("w$") }
  end)
  local code = context.from_lines(buf, view[1], view[2])
  if vim.trim(code.text) == "" then
    return nil -- an empty buffer: nothing to send
  end
  return code
end

local function relative(root, path)
  path = vim.fs.normalize(vim.fn.fnamemodify(path, ":p"))
  return workspace.relative(root, path) or path
end

--- A whole buffer as it is in Neovim (unsaved changes included).
local function buffer_context(buf)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local item = { uri = context.uri_of(buf), text = table.concat(lines, "\n") }
  if vim.bo[buf].filetype ~= "" then
    item.languageId = vim.bo[buf].filetype
  end
  return item
end

local function inside(root, buf)
  local path = vim.fs.normalize(vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ":p"))
  return workspace.relative(root, path) ~= nil
end

--- What `question` names: @path files inside `root`, #buffer, #buffers (the open buffers of
--- the workspace's files only: the names of others go to `left_out`).
local function named(root, question, left_out)
  local items = {}
  for token in (" " .. question):gmatch("%s@(%S+)") do
    local path = vim.fs.joinpath(root, token)
    if vim.fn.filereadable(path) == 1 then
      table.insert(items, { uri = vim.uri_from_fname(vim.fs.normalize(vim.fn.fnamemodify(path, ":p"))) })
    end
  end
  local function has(tag)
    return (" " .. question .. " "):find("%s" .. tag .. "[%s%p]") ~= nil
  end
  if has("#buffers") then
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.bo[buf].buflisted and vim.api.nvim_buf_is_loaded(buf) and is_code(buf) then
        if vim.api.nvim_buf_get_name(buf) == "" then
          -- A buffer without a file: nothing to name it by.
        elseif inside(root, buf) then
          table.insert(items, buffer_context(buf))
        elseif left_out then
          table.insert(left_out, vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ":~"))
        end
      end
    end
  elseif has("#buffer") then
    local win = M.source_window()
    if win then
      table.insert(items, buffer_context(vim.api.nvim_win_get_buf(win)))
    end
  end
  return items
end

--- The pieces the next question carries, as { context?, attachments } for deskmate.ask.
---@param root string
---@param question string
---@param left_out string[]? gets the open buffers #buffers leaves out (outside the workspace)
---@return table? context, table[] attachments
function M.collect(root, question, left_out)
  local s = state(root)
  local editor = M.editor_context()
  if editor and editor.uri == s.dropped then
    editor = nil
  end
  local attachments, seen = {}, {}
  local function add(item)
    if not seen[item.uri] then
      seen[item.uri] = true
      table.insert(attachments, item)
    end
  end
  for _, file in ipairs(s.files) do
    add({ uri = file.uri })
  end
  for _, item in ipairs(named(root, question or "", left_out)) do
    add(item)
  end
  return editor, attachments
end

--- Like M.collect, for the ask itself: the added files are used up.
function M.take(root, question)
  local left_out = {}
  local editor, attachments = M.collect(root, question, left_out)
  state(root).files = {}
  if #left_out > 0 then
    vim.notify(
      ("deskmate: #buffers sends the workspace's files only; not sent: %s"):format(table.concat(left_out, ", ")),
      vim.log.levels.INFO
    )
  end
  return editor, attachments
end

--- The chips the prompt shows for what would go along with `question`.
---@param root string
---@param question string?
---@return string[]
function M.labels(root, question)
  local editor, attachments = M.collect(root, question or "")
  local labels = {}
  if editor then
    table.insert(labels, context.label(editor, root))
  end
  for _, item in ipairs(attachments) do
    table.insert(labels, context.label(item, root))
  end
  return labels
end

--- Adds a workspace file to the next question.
---@param root string
---@param path string
---@return boolean added
function M.add(root, path)
  local full = vim.fs.normalize(vim.fn.fnamemodify(path, ":p"))
  if vim.fn.filereadable(full) ~= 1 then
    vim.notify(("deskmate: %s is not a readable file."):format(path), vim.log.levels.ERROR)
    return false
  end
  local uri = vim.uri_from_fname(full)
  local s = state(root)
  for _, file in ipairs(s.files) do
    if file.uri == uri then
      return true
    end
  end
  table.insert(s.files, { uri = uri, label = relative(root, full) })
  return true
end

--- Drops a piece from the next question: the editor's code ("editor") or an added file's URI.
---@param root string
---@param id string
function M.drop(root, id)
  local s = state(root)
  if id == "editor" then
    local editor = M.editor_context()
    s.dropped = editor and editor.uri or s.dropped
    return
  end
  s.files = vim.tbl_filter(function(file)
    return file.uri ~= id
  end, s.files)
end

--- The droppable pieces: { id, label } (the editor's code first, then added files).
---@param root string
function M.droppable(root)
  local s = state(root)
  local pieces = {}
  local editor = M.editor_context()
  if editor and editor.uri ~= s.dropped then
    table.insert(pieces, { id = "editor", label = context.label(editor, root) })
  end
  for _, file in ipairs(s.files) do
    table.insert(pieces, { id = file.uri, label = file.label })
  end
  return pieces
end

--- The editor's code comes back when another file is in view.
---@param root string
function M.forget_dropped_if_moved(root)
  local s = state(root)
  local editor = M.editor_context()
  if s.dropped and editor and editor.uri ~= s.dropped then
    s.dropped = nil
  end
end

--- Workspace files whose path contains `base`, for @ completion (at most 50).
---@param root string
---@param base string
---@return string[]
function M.files(root, base)
  local found = {}
  local needle = base:lower()
  for name, kind in vim.fs.dir(root, {
    depth = 8,
    skip = function(dir)
      local leaf = vim.fs.basename(dir)
      return not (leaf:match("^%.") or leaf == "node_modules" or leaf == "__pycache__")
    end,
  }) do
    if kind == "file" and name:lower():find(needle, 1, true) then
      table.insert(found, name)
    end
  end
  table.sort(found, function(a, b)
    return #a < #b or (#a == #b and a < b)
  end)
  return vim.list_slice(found, 1, 50)
end

--- 'completefunc' of the chat prompt: @ completes workspace files.
---@param findstart integer
---@param base string
function M.complete(findstart, base)
  local root = vim.b.deskmate_root or workspace.root(0)
  if findstart == 1 then
    local line = vim.api.nvim_get_current_line():sub(1, vim.fn.col(".") - 1)
    local at = line:match(".*()@%S*$")
    return at and at or -3 -- -3: leave completion mode, nothing to complete
  end
  return vim.tbl_map(function(name)
    return { word = name, menu = "[file]" }
  end, M.files(root, base))
end

return M
