-- The life of one question: send deskmate.ask, stream its deltas into the chat, cancel it.
local chat = require("deskmate.chat")
local client = require("deskmate.client")
local workspace = require("deskmate.workspace")
require("deskmate.live") -- a chat shows turns asked in other windows as they are stored

local M = {}

---@class deskmate.Ask
---@field id string
---@field root string
---@field next_index integer the delta index expected next
---@field cancelled boolean?
---@field done fun(err: table?, result: table?)

---@type table<string, deskmate.Ask> running asks by askId
local asks = {}
---@type table<string, string> askId of the running ask by root
local by_root = {}
local counter = 0
---@type table<string, { cb: fun(err: table?)? }[]> history loads that came back while an answer streamed
local deferred_loads = {}

--- The answer in `root` has ended: run the history loads that waited for it.
local function answer_ended(root)
  local waiting = deferred_loads[root] or {}
  deferred_loads[root] = nil
  for _, load in ipairs(waiting) do
    M.load(root, load.cb)
  end
end

local function new_id()
  counter = counter + 1
  return ("nvim-%d-%d-%d"):format(vim.fn.getpid(), vim.uv.hrtime() % 1e9, counter)
end

local notify_error = require("deskmate.notify").error

client.subscribe("deskmate/askDelta", function(params)
  local ask = asks[params.askId]
  if not ask then
    return
  end
  local index = tonumber(params.index)
  -- A repeated delta (same index) would duplicate text; the final answer fixes any gap.
  if index and index < ask.next_index then
    return
  end
  ask.next_index = (index or ask.next_index) + 1
  chat.append(ask.root, params.delta or "")
end)

client.subscribe("exit", function(params)
  for id, ask in pairs(asks) do
    if ask.root == params.root then
      asks[id] = nil
      by_root[ask.root] = nil
      chat.end_turn(ask.root, { error = "the daemon stopped" })
      chat.set_status(ask.root, "")
      answer_ended(ask.root)
      if ask.done then
        ask.done({ message = "the daemon stopped" })
      end
    end
  end
end)

-- The winbar's title after a first answer: a session is titled once its first question is
-- stored (its first line), so the chat asks for it rather than keep "New conversation". A chat
-- with a title asks nothing: later titles (the model's, a rename) reach it through live.lua.
local function refresh_labels(root, session_id)
  local view = chat.find(root)
  if not session_id or (view and view.title and view.title ~= "") then
    return
  end
  client.exec(root, "deskmate.getSession", { sessionId = session_id }, function(err, session)
    local view = chat.find(root)
    if not err and view and view.session_id == session_id then
      chat.set_labels(root, session)
    end
  end)
end

--- Whether an answer is streaming in `root`.
---@param root string
---@return boolean
function M.running(root)
  return by_root[root] ~= nil
end

--- The askId running in `root`, if any.
---@param root string
---@return string?
function M.current(root)
  return by_root[root]
end

---@class deskmate.Resend an edited or retried question: the answer goes to a new fork
---@field session_id string the session the question is in
---@field message_id string the question (or, with regenerate, the answer) to ask again
---@field regenerate boolean? ask it again unchanged (`question` is only shown)
---@field index integer? where that question is in the chat: the view is cut there

--- Asks `question` in the workspace `root` (default: the current buffer's) and streams the answer
--- into its chat, opening the chat when it is closed. `context` is a deskmate.ask context;
--- `attachments` more of them (files added with @path, #buffer, :Deskmate add).
--- With `resend`, the question replaces an earlier one (edit) or is asked again (retry): the
--- daemon answers in a new fork, which the chat then shows.
---@param opts { question: string, root: string?, context: table?, attachments: table[]?, resend: deskmate.Resend?, on_done: fun(err: table?, result: table?)? }
function M.ask(opts)
  local root = opts.root or workspace.root(0)
  local question = vim.trim(opts.question or "")
  local function done(err, result)
    if opts.on_done then
      opts.on_done(err, result)
    end
  end
  if question == "" then
    notify_error("deskmate: the question is empty.")
    return done({ message = "empty question" })
  end
  if by_root[root] then
    vim.notify(
      "deskmate: still answering the previous question; wait for it or :Deskmate cancel.",
      vim.log.levels.WARN
    )
    return done({ message = "busy" })
  end
  local id = new_id()
  local ask = { id = id, root = root, next_index = 0, done = done }
  asks[id] = ask
  by_root[root] = id
  chat.open(root)
  chat.set_status(root, "starting…")

  local resend = opts.resend
  local function send()
    if resend then
      chat.truncate(root, resend.index)
    end
    chat.begin_turn(root, question, require("deskmate.context").note(opts.context, opts.attachments, root))
    chat.set_status(root, "answering…")
    local args = { question = question, askId = id, workspaceUri = workspace.uri(root), context = opts.context }
    if opts.attachments and #opts.attachments > 0 then
      args.attachments = opts.attachments
    end
    if resend then
      args.sessionId, args.editMessageId = resend.session_id, resend.message_id
      if resend.regenerate then
        args.regenerate, args.question = true, nil
      end
    end
    client.exec(root, "deskmate.ask", args, function(err, result)
      if asks[id] ~= ask then
        return -- already ended (the daemon stopped)
      end
      asks[id] = nil
      by_root[root] = nil
      chat.set_status(root, "")
      if err then
        chat.end_turn(root, { error = err.message })
        answer_ended(root)
        notify_error(err.message)
        -- A failed first question is stored too, and titles its session.
        refresh_labels(root, chat.get(root).session_id)
        return done(err)
      end
      local session_id = result.sessionId ~= vim.NIL and result.sessionId or nil
      chat.end_turn(root, {
        answer = result.answer,
        interrupted = result.interrupted == true,
        session_id = session_id,
      })
      answer_ended(root)
      if type(result.forkedFrom) == "table" then
        -- Now in the fork: show it as stored (message ids, lineage in the winbar).
        return M.load(root, function()
          done(nil, result)
        end)
      end
      refresh_labels(root, session_id)
      done(nil, result)
    end)
  end

  -- Show the stored history first, so the new turn lands after it.
  local view = chat.get(root)
  if view.session_id or view.loaded or resend then
    send()
  else
    M.load(root, function(err)
      if err then
        asks[id] = nil
        by_root[root] = nil
        chat.set_status(root, "")
        notify_error(err.message)
        return done(err)
      end
      send()
    end)
  end
end

--- Loads the workspace's active session into its chat. `cb(err)` when done.
---@param root string
---@param cb fun(err: table?)?
function M.load(root, cb)
  client.exec(root, "deskmate.getSession", { workspaceUri = workspace.uri(root) }, function(err, session)
    if err then
      if cb then
        return cb(err)
      end
      return notify_error(err.message)
    end
    local view = chat.find(root)
    if view and view.answer_mark then
      -- An answer is streaming: this history predates it and rendering it would wipe
      -- the answer. Load again once the answer has ended (and is stored).
      deferred_loads[root] = deferred_loads[root] or {}
      table.insert(deferred_loads[root], { cb = cb })
      return
    end
    chat.render(root, session)
    chat.get(root).loaded = true
    if cb then
      cb(nil)
    end
  end)
end

--- Cancels the answer streaming in `root`; what arrived so far stays (the daemon stores it too).
---@param root string?
---@param cb fun(cancelled: boolean)?
function M.cancel(root, cb)
  root = root or workspace.root(0)
  local id = by_root[root]
  if not id then
    vim.notify("deskmate: nothing to cancel.", vim.log.levels.INFO)
    if cb then
      cb(false)
    end
    return
  end
  asks[id].cancelled = true
  chat.set_status(root, "cancelling…")
  client.exec(root, "deskmate.cancel", { askId = id }, function(err, result)
    if err then
      notify_error(err.message)
    end
    if cb then
      cb(not err and result and result.cancelled == true)
    end
  end)
end

return M
