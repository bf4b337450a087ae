-- Forks from the chat: fork at the message under the cursor, edit a question and resend it,
-- retry an answer. The daemon makes the fork (deskmate.forkSession, or deskmate.ask with
-- editMessageId); this module only finds the message and shows the result.
local ask = require("deskmate.ask")
local chat = require("deskmate.chat")
local client = require("deskmate.client")
local workspace = require("deskmate.workspace")

local M = {}

local notify_error = require("deskmate.notify").error

---@class deskmate.Target
---@field root string
---@field session_id string
---@field index integer the message's place in the chat
---@field message deskmate.ChatMessage

--- The message under the cursor in a chat buffer, with its id (loading the history when it was
--- streamed since the last load). `cb(target)`; nothing when there is none (the user is told).
---@param cb fun(target: deskmate.Target)
---@param fallback_last_answer boolean? outside the chat, take the chat's last answer
function M.target(cb, fallback_last_answer)
  local buf = vim.api.nvim_get_current_buf()
  local root = vim.b[buf].deskmate_root or workspace.root(0)
  local view = chat.find(root)
  local index
  if view and view.buf == buf then
    index = chat.message_index(root, vim.api.nvim_win_get_cursor(0)[1] - 1)
  elseif view and fallback_last_answer then
    for i = #view.messages, 1, -1 do
      if view.messages[i].role == "assistant" then
        index = i
        break
      end
    end
  end
  if not index then
    notify_error("deskmate: put the cursor on a message in the deskmate chat (:Deskmate chat).")
    return
  end
  if ask.running(root) then
    vim.notify("deskmate: an answer is still streaming; wait for it or :Deskmate cancel.", vim.log.levels.WARN)
    return
  end
  local function found()
    local shown = chat.find(root)
    local message = shown and shown.messages[index]
    if not (message and message.id and shown.session_id) then
      return notify_error("deskmate: that message is not stored yet; try again in a moment.")
    end
    cb({ root = root, session_id = shown.session_id, index = index, message = message })
  end
  if view.messages[index].id and view.session_id then
    return found()
  end
  ask.load(root, function(err)
    if err then
      return notify_error(err.message)
    end
    found()
  end)
end

--- A new session holding the chat's history up to the message under the cursor; it becomes the
--- workspace's active session and the chat shows it.
---@param title string?
---@param cb fun(err: table?, result: table?)?
function M.fork(title, cb)
  M.target(function(t)
    local args = { sessionId = t.session_id, messageId = t.message.id, workspaceUri = workspace.uri(t.root) }
    if title and title ~= "" then
      args.title = title
    end
    client.exec(t.root, "deskmate.forkSession", args, function(err, result)
      if err then
        notify_error(err.message)
        return cb and cb(err)
      end
      vim.notify(("deskmate: forked into %q (%d messages)."):format(result.title, result.messageCount or 0))
      ask.load(t.root, function(load_err)
        if cb then
          cb(load_err, result)
        end
      end)
    end)
  end)
end

--- Asks the question under the cursor (or before the answer under it) again, unchanged, in a
--- fork; outside the chat, the chat's last answer is retried.
---@param cb fun(err: table?, result: table?)?
function M.retry(cb)
  M.target(function(t)
    local index = t.index
    local view = chat.find(t.root)
    while index > 1 and view.messages[index].role ~= "user" do
      index = index - 1
    end
    local question = view.messages[index]
    if question.role ~= "user" then
      return notify_error("deskmate: there is no question before that message to ask again.")
    end
    ask.ask({
      root = t.root,
      question = question.content,
      resend = { session_id = t.session_id, message_id = question.id, regenerate = true, index = index },
      on_done = cb,
    })
  end, true)
end

--- Opens the question under the cursor in a buffer of its own; writing it (:w) resends the new
--- text in a fork and closes the buffer.
---@param cb fun(err: table?, result: table?)? called after the resent question is answered
function M.edit(cb)
  M.target(function(t)
    if t.message.role ~= "user" then
      return notify_error("deskmate: put the cursor on one of your questions to edit it (:Deskmate retry asks again).")
    end
    vim.cmd("botright new")
    local buf = vim.api.nvim_get_current_buf()
    pcall(vim.api.nvim_buf_set_name, buf, "deskmate://edit/" .. t.message.id)
    vim.bo[buf].buftype = "acwrite"
    vim.bo[buf].bufhidden = "wipe"
    vim.bo[buf].swapfile = false
    vim.bo[buf].filetype = "markdown"
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, vim.split(t.message.content, "\n", { plain = true }))
    vim.bo[buf].modified = false
    vim.b[buf].deskmate_edit = { session_id = t.session_id, message_id = t.message.id }
    vim.wo[0][0].winbar = " deskmate · edit the question, then :w to resend it in a fork"
    vim.api.nvim_create_autocmd("BufWriteCmd", {
      buffer = buf,
      callback = function()
        local text = vim.trim(table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n"))
        if text == "" then
          return notify_error("deskmate: the question is empty; write some text or close the buffer.")
        end
        vim.bo[buf].modified = false
        -- Where the question is now in the chat (it may have been reloaded meanwhile).
        local view, index = chat.find(t.root), nil
        for i, message in ipairs(view and view.session_id == t.session_id and view.messages or {}) do
          if message.id == t.message.id then
            index = i
          end
        end
        vim.schedule(function()
          pcall(vim.api.nvim_buf_delete, buf, { force = true })
          ask.ask({
            root = t.root,
            question = text,
            resend = { session_id = t.session_id, message_id = t.message.id, index = index },
            on_done = cb,
          })
        end)
      end,
    })
  end)
end

return M
