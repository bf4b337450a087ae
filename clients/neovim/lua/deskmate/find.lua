-- Finding old conversations: search across sessions (results in vim.ui.select, so telescope,
-- fzf-lua or snacks show them when they replace it), and naming, tagging and pinning the
-- active session. The daemon searches and stores; this module asks and shows.
local ask = require("deskmate.ask")
local chat = require("deskmate.chat")
local client = require("deskmate.client")
local workspace = require("deskmate.workspace")

local M = {}

local notify_error = require("deskmate.notify").error

local function text(value)
  return (value ~= vim.NIL and value) or nil
end

--- One line describing a search result: title, date, role and the snippet on one line.
---@param hit table a searchSessions result
---@return string
function M.format(hit)
  local snippet = (text(hit.snippet) or ""):gsub("%s+", " ")
  local role = text(hit.role)
  local where = role and (role == "user" and "question" or "answer") or "title"
  return ("%s · %s · %s: %s"):format(
    text(hit.title) or hit.sessionId,
    require("deskmate.sessions").age(text(hit.timestamp)),
    where,
    snippet
  )
end

--- Puts the cursor of the chat window on the message `message_id`, if the chat shows it.
---@param root string
---@param message_id string?
---@return boolean found
function M.reveal(root, message_id)
  local view = chat.find(root)
  if not (view and message_id) then
    return false
  end
  for _, message in ipairs(view.messages) do
    if message.id == message_id then
      local win = vim.fn.win_findbuf(view.buf)[1]
      if win then
        vim.api.nvim_set_current_win(win)
        vim.api.nvim_win_set_cursor(win, { message.line + 1, 0 })
        vim.cmd("normal! zt")
      end
      return true
    end
  end
  return false
end

--- Opens a search result: its session becomes the workspace's active one and the chat shows
--- it, the cursor on the message found.
---@param root string
---@param hit table
---@param cb fun(err: table?)?
function M.open(root, hit, cb)
  if ask.running(root) then
    vim.notify("deskmate: an answer is still streaming; wait for it or :Deskmate cancel.", vim.log.levels.WARN)
    return cb and cb({ message = "busy" })
  end
  local function show()
    chat.open(root, false)
    ask.load(root, function(err)
      if err then
        notify_error(err.message)
        return cb and cb(err)
      end
      M.reveal(root, text(hit.messageId))
      if cb then
        cb(nil)
      end
    end)
  end
  local view = chat.find(root)
  if view and view.session_id == hit.sessionId then
    return show()
  end
  client.exec(root, "deskmate.switchSession", { sessionId = hit.sessionId, workspaceUri = workspace.uri(root) }, function(err)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    show()
  end)
end

--- Searches this workspace's sessions (`all`: every session) for `query` and lets the user
--- pick a result with vim.ui.select; the chosen one opens at its message.
---@param root string
---@param query string
---@param opts { all: boolean?, cb: fun(err: table?, results: table[]?)? }?
function M.search(root, query, opts)
  opts = opts or {}
  local cb = opts.cb
  local function run(q)
    if not q or vim.trim(q) == "" then
      return cb and cb({ message = "no query" })
    end
    local args = { query = q, workspaceUri = workspace.uri(root), limit = 50 }
    if opts.all then
      args.all = true
    end
    client.exec(root, "deskmate.searchSessions", args, function(err, result)
      if err then
        notify_error(err.message)
        return cb and cb(err)
      end
      local results = result.results or {}
      if #results == 0 then
        vim.notify(("deskmate: nothing found for %q."):format(q))
        return cb and cb(nil, results)
      end
      vim.ui.select(results, {
        prompt = ("deskmate: %d match%s for %q"):format(result.total, result.total == 1 and "" or "es", q),
        kind = "deskmate.search",
        format_item = M.format,
      }, function(hit)
        if not hit then
          return cb and cb(nil, results)
        end
        M.open(root, hit, function(open_err)
          if cb then
            cb(open_err, results)
          end
        end)
      end)
    end)
  end
  if query and vim.trim(query) ~= "" then
    return run(query)
  end
  vim.ui.input({ prompt = "Search deskmate sessions: " }, run)
end

--- The session the user means: the one the chat shows, else the workspace's active one.
---@param root string
---@param cb fun(session_id: string?, title: string?)
local function current(root, cb)
  local view = chat.find(root)
  if view and view.session_id then
    return cb(view.session_id, view.title)
  end
  client.exec(root, "deskmate.getSession", { workspaceUri = workspace.uri(root) }, function(err, session)
    if err then
      notify_error(err.message)
      return cb(nil)
    end
    local id = text(session.sessionId)
    if not id or #(session.messages or {}) == 0 then
      vim.notify("deskmate: this workspace has no stored session yet; ask something first.", vim.log.levels.WARN)
      return cb(nil)
    end
    cb(id, text(session.title))
  end)
end

local function refresh(root, cb)
  if chat.find(root) and not ask.running(root) then
    return ask.load(root, cb)
  end
  if cb then
    cb(nil)
  end
end

--- Renames the current session (asks for the title when none is given).
---@param root string
---@param title string?
---@param cb fun(err: table?, result: table?)?
function M.rename(root, title, cb)
  current(root, function(id, old)
    if not id then
      return cb and cb({ message = "no session" })
    end
    local function go(new_title)
      if not new_title or vim.trim(new_title) == "" then
        return cb and cb({ message = "no title" })
      end
      client.exec(root, "deskmate.renameSession", { sessionId = id, title = new_title }, function(err, result)
        if err then
          notify_error(err.message)
          return cb and cb(err)
        end
        vim.notify(("deskmate: renamed to %q."):format(result.title))
        refresh(root, function()
          if cb then
            cb(nil, result)
          end
        end)
      end)
    end
    if title and vim.trim(title) ~= "" then
      return go(title)
    end
    vim.ui.input({ prompt = "Rename session: ", default = old or "" }, go)
  end)
end

--- Tags the current session: `words` like "parser bug -old" add parser and bug and remove old.
---@param root string
---@param words string
---@param cb fun(err: table?, result: table?)?
function M.tag(root, words, cb)
  local add, remove = {}, {}
  for word in (words or ""):gmatch("%S+") do
    if word:sub(1, 1) == "-" and #word > 1 then
      table.insert(remove, word:sub(2))
    else
      table.insert(add, (word:gsub("^%+", "")))
    end
  end
  if #add == 0 and #remove == 0 then
    notify_error("deskmate: :Deskmate tag {tag}… (-tag removes one)")
    return cb and cb({ message = "no tags" })
  end
  current(root, function(id)
    if not id then
      return cb and cb({ message = "no session" })
    end
    client.exec(root, "deskmate.tagSession", { sessionId = id, add = add, remove = remove }, function(err, result)
      if err then
        notify_error(err.message)
        return cb and cb(err)
      end
      local tags = #result.tags > 0 and table.concat(result.tags, ", ") or "(none)"
      vim.notify(("deskmate: tags: %s."):format(tags))
      if cb then
        cb(nil, result)
      end
    end)
  end)
end

--- Pins the current session to the top of every listing (`pinned` false: unpins it).
---@param root string
---@param pinned boolean
---@param cb fun(err: table?, result: table?)?
function M.pin(root, pinned, cb)
  current(root, function(id)
    if not id then
      return cb and cb({ message = "no session" })
    end
    client.exec(root, "deskmate.pinSession", { sessionId = id, pinned = pinned }, function(err, result)
      if err then
        notify_error(err.message)
        return cb and cb(err)
      end
      vim.notify(result.pinned and "deskmate: pinned." or "deskmate: unpinned.")
      if cb then
        cb(nil, result)
      end
    end)
  end)
end

return M
