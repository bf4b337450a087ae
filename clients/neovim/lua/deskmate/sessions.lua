-- Session management: pick, switch, create, delete (to the trash), restore and export a workspace's sessions.
local ask = require("deskmate.ask")
local chat = require("deskmate.chat")
local client = require("deskmate.client")
local workspace = require("deskmate.workspace")

local M = {}

---@type table<string, string[]> session ids seen per root, for command-line completion
local known_ids = {}
---@type table<string, table[]> the sessions last listed, by root: what completion offers
local known_sessions = {}
---@type table<string, string[]> ids of trashed sessions seen per root, for :Deskmate restore
local known_trash = {}

local notify_error = require("deskmate.notify").error

local function busy(root)
  if ask.running(root) then
    vim.notify(
      "deskmate: an answer is still streaming; wait for it or :Deskmate cancel.",
      vim.log.levels.WARN
    )
    return true
  end
  return false
end

-- Reloads the chat if it is showing (or has shown) this workspace.
local function refresh_chat(root, cb)
  if chat.find(root) then
    ask.load(root, cb)
  elseif cb then
    cb()
  end
end

--- "3 min ago", "yesterday", or the date, for an ISO 8601 UTC timestamp.
---@param iso string?
---@return string
function M.age(iso)
  if type(iso) ~= "string" then
    return "?"
  end
  local y, mo, d, h, mi, s = iso:match("^(%d+)-(%d+)-(%d+)[T ](%d+):(%d+):(%d+)")
  if not y then
    return iso
  end
  -- Timestamps without a zone are taken as UTC, like those ending in "Z".
  local offset = 0
  local sign, oh, om = iso:match("%d%d:%d%d:%d%d[.%d]*([+-])(%d%d):?(%d%d)$")
  if sign then
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "+" and 1 or -1)
  end
  local fields = { year = y, month = mo, day = d, hour = h, min = mi, sec = s, isdst = false }
  -- os.time reads the fields as local time; correct by the local UTC offset.
  local now = os.time()
  local local_offset = os.difftime(now, os.time(os.date("!*t", now) --[[@as osdateparam]]))
  local t = os.time(fields --[[@as osdateparam]]) + local_offset - offset
  local ago = os.difftime(now, t)
  if ago < 60 then
    return "just now"
  elseif ago < 3600 then
    return ("%d min ago"):format(ago / 60)
  elseif ago < 86400 then
    return ("%d h ago"):format(ago / 3600)
  elseif ago < 2 * 86400 then
    return "yesterday"
  end
  return os.date("%Y-%m-%d", t) --[[@as string]]
end

--- A session's name as every list, prompt and message shows it: its title, or "New
--- conversation" before its first question gives it one.
---@param s table a listSessions entry (or anything with sessionId and title)
---@return string
function M.name(s)
  if s.title ~= nil and s.title ~= vim.NIL and s.title ~= "" then
    return s.title
  end
  return "New conversation"
end

--- One line describing a session in the picker.
---@param s table a listSessions entry
---@return string
function M.format(s)
  local title = M.name(s)
  local count = tonumber(s.messageCount) or 0
  local fork = type(s.forkedFrom) == "table" and (" · fork of " .. s.forkedFrom.sessionId) or ""
  local tags = type(s.tags) == "table" and #s.tags > 0 and (" · #" .. table.concat(s.tags, " #")) or ""
  return ("%s%s%s · %s · %d message%s%s%s"):format(
    s.active and "● " or "  ",
    s.pinned == true and "📌 " or "",
    title,
    M.age(s.updatedAt),
    count,
    count == 1 and "" or "s",
    fork,
    tags
  )
end

--- Calls `cb(sessions)` with the workspace's sessions, most recent first.
---@param root string
---@param cb fun(sessions: table[]?, err: table?)
function M.list(root, cb)
  client.exec(root, "deskmate.listSessions", { workspaceUri = workspace.uri(root) }, function(err, result)
    if err then
      return cb(nil, err)
    end
    local sessions = result.sessions or {}
    known_ids[root] = vim.tbl_map(function(s)
      return s.sessionId
    end, sessions)
    known_sessions[root] = sessions
    cb(sessions)
  end)
end

--- Session ids seen in `root`, for completion; refreshed in the background.
---@param root string
---@return string[]
function M.completion_ids(root)
  if client.running(root) then
    M.list(root, function() end)
  end
  return known_ids[root] or {}
end

--- What `:Deskmate switch <Tab>` offers: titles, each unique (an untitled or repeated title
--- is offered as its session id). Refreshed in the background.
---@param root string
---@return string[]
function M.completion_names(root)
  M.completion_ids(root)
  local sessions = known_sessions[root] or {}
  local count = {}
  for _, session in ipairs(sessions) do
    local name = M.name(session)
    count[name] = (count[name] or 0) + 1
  end
  return vim.tbl_map(function(session)
    local name = M.name(session)
    return (count[name] == 1 and name ~= "New conversation") and name or session.sessionId
  end, sessions)
end

--- The session id a name typed after :Deskmate switch stands for: an id, or a unique title.
---@param root string
---@param name string
---@return string
function M.resolve(root, name)
  for _, session in ipairs(known_sessions[root] or {}) do
    if session.sessionId == name then
      return name
    end
  end
  local found
  for _, session in ipairs(known_sessions[root] or {}) do
    if M.name(session) == name then
      if found then
        return name -- two sessions with this title: only its id tells them apart
      end
      found = session.sessionId
    end
  end
  return found or name
end

--- Makes `id` the workspace's active session and shows it in the chat.
---@param root string
---@param id string
---@param cb fun(err: table?)?
function M.switch(root, id, cb)
  if busy(root) then
    return cb and cb({ message = "busy" })
  end
  client.exec(root, "deskmate.switchSession", { sessionId = id, workspaceUri = workspace.uri(root) }, function(err, result)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    vim.notify(("deskmate: switched to %q (%d messages)."):format(M.name(result), result.messageCount or 0))
    refresh_chat(root, cb)
  end)
end

local function title_of(s)
  return (s and s.title ~= vim.NIL and s.title ~= "" and s.title) or nil
end

--- Moves session `id` (default: the workspace's active one) to the trash. Nothing is asked:
--- `:Deskmate restore` brings it back until it is purged.
---@param root string
---@param id string?
---@param opts { cb: fun(err: table?)? }?
function M.delete(root, id, opts)
  opts = opts or {}
  local cb = opts.cb
  if busy(root) then
    return cb and cb({ message = "busy" })
  end
  local function to_trash(session_id, title)
    client.exec(root, "deskmate.deleteSession", { sessionId = session_id }, function(err, result)
      if err then
        notify_error(err.message)
        return cb and cb(err)
      end
      if result.deleted then
        local until_ = type(result.purgeAfter) == "string" and (" (kept until %s)"):format(result.purgeAfter:sub(1, 10))
          or ""
        vim.notify(
          ("deskmate: moved %q to the trash%s; :Deskmate restore %s brings it back."):format(
            title or session_id,
            until_,
            session_id
          )
        )
      else
        vim.notify(("deskmate: there was no session %q to delete."):format(session_id), vim.log.levels.WARN)
      end
      refresh_chat(root, cb)
    end)
  end
  if id and id ~= "" then
    return to_trash(id, nil)
  end
  client.exec(root, "deskmate.getSession", { workspaceUri = workspace.uri(root) }, function(err, session)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    if session.sessionId == vim.NIL or session.sessionId == nil then
      vim.notify("deskmate: this workspace has no stored session.", vim.log.levels.WARN)
      return cb and cb({ message = "no session" })
    end
    to_trash(session.sessionId, title_of(session))
  end)
end

--- Calls `cb(sessions)` with the workspace's trash, most recently deleted first.
---@param root string
---@param cb fun(sessions: table[]?, err: table?)
function M.trash_list(root, cb)
  local args = { workspaceUri = workspace.uri(root), trash = true }
  client.exec(root, "deskmate.listSessions", args, function(err, result)
    if err then
      return cb(nil, err)
    end
    local sessions = result.sessions or {}
    known_trash[root] = vim.tbl_map(function(s)
      return s.sessionId
    end, sessions)
    cb(sessions)
  end)
end

--- Trashed session ids seen in `root`, for completion; refreshed in the background.
---@param root string
---@return string[]
function M.trash_ids(root)
  if client.running(root) then
    M.trash_list(root, function() end)
  end
  return known_trash[root] or {}
end

--- One line describing a trashed session in the picker.
---@param s table a listSessions {trash = true} entry
---@return string
function M.format_trashed(s)
  local count = tonumber(s.messageCount) or 0
  local purge = type(s.purgeAfter) == "string" and s.purgeAfter:sub(1, 10) or "?"
  return ("%s · deleted %s · purged after %s · %d message%s"):format(
    title_of(s) or s.sessionId,
    M.age(s.deletedAt),
    purge,
    count,
    count == 1 and "" or "s"
  )
end

--- Takes session `id` out of the trash, whole.
---@param root string
---@param id string
---@param cb fun(err: table?)?
function M.restore(root, id, cb)
  client.exec(root, "deskmate.restoreSession", { sessionId = id }, function(err, result)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    vim.notify(
      ("deskmate: restored %q (%d messages); :Deskmate switch %s to continue it."):format(
        title_of(result) or id,
        result.messageCount or 0,
        id
      )
    )
    if cb then
      cb()
    end
  end)
end

--- Deletes trashed sessions for good, after a confirmation.
---@param root string
---@param ids string[]
---@param what string what the confirmation names
---@param cb fun(err: table?)?
local function purge(root, ids, what, cb)
  vim.ui.select({ "Delete permanently", "Keep" }, {
    prompt = ("Delete %s permanently? This cannot be undone."):format(what),
    kind = "deskmate.confirm",
  }, function(choice)
    if choice ~= "Delete permanently" then
      return cb and cb({ message = "not confirmed" })
    end
    local left = #ids
    local failed = nil
    for _, id in ipairs(ids) do
      client.exec(root, "deskmate.deleteSession", { sessionId = id, permanent = true }, function(err)
        failed = failed or err
        left = left - 1
        if left == 0 then
          if failed then
            notify_error(failed.message)
          else
            vim.notify(("deskmate: deleted %s permanently."):format(what))
          end
          if cb then
            cb(failed)
          end
        end
      end)
    end
  end)
end

--- `vim.ui.select` over the trash: restore a session, delete it for good, or empty the trash.
---@param root string
---@param cb fun(err: table?)?
function M.trash(root, cb)
  M.trash_list(root, function(sessions, err)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    if #sessions == 0 then
      vim.notify("deskmate: the trash is empty.")
      return cb and cb()
    end
    local items = vim.list_extend({}, sessions)
    table.insert(items, { empty = true })
    vim.ui.select(items, {
      prompt = "deskmate trash",
      kind = "deskmate.trash",
      format_item = function(item)
        return item.empty and ("Empty the trash (%d session%s)"):format(#sessions, #sessions == 1 and "" or "s")
          or M.format_trashed(item)
      end,
    }, function(item)
      if not item then
        return cb and cb()
      end
      if item.empty then
        local ids = vim.tbl_map(function(s)
          return s.sessionId
        end, sessions)
        return purge(root, ids, ("the %d session%s in the trash"):format(#ids, #ids == 1 and "" or "s"), cb)
      end
      local title = title_of(item) or item.sessionId
      vim.ui.select({ "Restore it", "Delete permanently" }, {
        prompt = ("Session %q"):format(title),
        kind = "deskmate.trash_action",
      }, function(action)
        if action == "Restore it" then
          M.restore(root, item.sessionId, cb)
        elseif action == "Delete permanently" then
          purge(root, { item.sessionId }, ("%q"):format(title), cb)
        elseif cb then
          cb()
        end
      end)
    end)
  end)
end

--- `vim.ui.select` over the workspace's sessions, then switch to or delete the chosen one.
---@param root string
---@param cb fun(err: table?)?
function M.pick(root, cb)
  M.list(root, function(sessions, err)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    if #sessions == 0 then
      vim.notify("deskmate: no sessions in this workspace yet.")
      return cb and cb()
    end
    vim.ui.select(sessions, {
      prompt = "deskmate sessions",
      kind = "deskmate.session",
      format_item = M.format,
    }, function(session)
      if not session then
        return cb and cb()
      end
      -- Named as the list showed it.
      local title = M.name(session)
      vim.ui.select({ "Switch to it", "Move it to the trash" }, {
        prompt = ("Session %q"):format(title),
        kind = "deskmate.session_action",
      }, function(action)
        if action == "Switch to it" then
          M.switch(root, session.sessionId, cb)
        elseif action == "Move it to the trash" then
          M.delete(root, session.sessionId, { cb = cb })
        elseif cb then
          cb()
        end
      end)
    end)
  end)
end

--- Starts a fresh session, which becomes the workspace's active one.
---@param root string
---@param title string?
---@param cb fun(err: table?)?
function M.new(root, title, cb)
  if busy(root) then
    return cb and cb({ message = "busy" })
  end
  local args = { workspaceUri = workspace.uri(root) }
  if title and title ~= "" then
    args.title = title
  end
  client.exec(root, "deskmate.newSession", args, function(err, result)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    local title = (result.title ~= vim.NIL and result.title ~= "") and result.title or result.sessionId
    vim.notify(("deskmate: new session %q."):format(title))
    refresh_chat(root, cb)
  end)
end

--- Opens the active session as Markdown in a new buffer (in a split).
---@param root string
---@param cb fun(err: table?, buf: integer?)?
function M.export(root, cb)
  client.exec(root, "deskmate.exportSession", { workspaceUri = workspace.uri(root) }, function(err, result)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    vim.cmd.new()
    local buf = vim.api.nvim_get_current_buf()
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(result.markdown or "", "\n", { plain = true }))
    vim.bo[buf].filetype = "markdown"
    -- Nothing is lost when it is closed unsaved: the daemon still has the session.
    vim.bo[buf].modified = false
    vim.b[buf].deskmate_export = result.sessionId
    if cb then
      cb(nil, buf)
    end
  end)
end

return M
