-- Compaction and pinned messages from Neovim: :Deskmate compact [instructions], :Deskmate
-- uncompact, and :Deskmate pin on a message of the chat. The daemon summarizes, stores and
-- fits the prompt (deskmate.compactSession, uncompactSession, pinMessage); this module asks
-- it and shows the chat again.
local ask = require("deskmate.ask")
local chat = require("deskmate.chat")
local client = require("deskmate.client")
local workspace = require("deskmate.workspace")

local M = {}

local notify_error = require("deskmate.notify").error

local function reload(root, cb, result)
  ask.load(root, function(err)
    if cb then
      cb(err, result)
    end
  end)
end

--- Summarizes the session's turns before its latest one; `instructions` say what to keep.
---@param root string
---@param instructions string?
---@param cb fun(err: table?, result: table?)?
function M.compact(root, instructions, cb)
  if ask.running(root) then
    vim.notify("deskmate: an answer is still streaming; wait for it or :Deskmate cancel.", vim.log.levels.WARN)
    return
  end
  local args = { workspaceUri = workspace.uri(root) }
  if instructions and instructions ~= "" then
    args.instructions = instructions
  end
  vim.notify("deskmate: summarizing earlier messages…")
  client.exec(root, "deskmate.compactSession", args, function(err, result)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    vim.notify(
      ("deskmate: %d earlier messages summarized (folded at the top of the chat; zo opens it). "):format(
        result.messageCount or 0
      ) .. ":Deskmate uncompact undoes it."
    )
    reload(root, cb, result)
  end)
end

--- Drops the summary the chat shows: the next ask sends the messages it covers again.
---@param root string
---@param cb fun(err: table?, result: table?)?
function M.uncompact(root, cb)
  local function drop()
    local view = chat.find(root)
    if not (view and view.session_id and view.summary) then
      vim.notify("deskmate: this session has no summary to undo.", vim.log.levels.WARN)
      return cb and cb({ message = "no summary" })
    end
    local args = { sessionId = view.session_id, summaryId = view.summary.summaryId }
    client.exec(root, "deskmate.uncompactSession", args, function(err, result)
      if err then
        notify_error(err.message)
        return cb and cb(err)
      end
      vim.notify("deskmate: summary dropped; the next ask sends those messages again, as far as they fit.")
      reload(root, cb, result)
    end)
  end
  ask.load(root, function(err)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    drop()
  end)
end

--- Whether the cursor is in the chat of `root` (where :Deskmate pin pins a message).
---@param root string
---@return boolean
function M.in_chat(root)
  local view = chat.find(root)
  return view ~= nil and view.buf == vim.api.nvim_get_current_buf()
end

--- Pins the message under the cursor in the chat (always sent, never summarized), or unpins it.
---@param pinned boolean
---@param cb fun(err: table?, result: table?)?
function M.pin_message(pinned, cb)
  require("deskmate.forks").target(function(t)
    local args = { sessionId = t.session_id, messageId = t.message.id, pinned = pinned }
    client.exec(t.root, "deskmate.pinMessage", args, function(err, result)
      if err then
        notify_error(err.message)
        return cb and cb(err)
      end
      vim.notify(
        result.pinned and "deskmate: message pinned: always sent to the model, never summarized."
          or "deskmate: message unpinned."
      )
      reload(t.root, cb, result)
    end)
  end)
end

return M
