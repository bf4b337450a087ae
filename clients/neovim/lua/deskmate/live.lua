-- Live sessions: another window changed the session a chat shows (a daemon of another editor,
-- or `deskmate ask` in a terminal). The daemon says so with deskmate/sessionChanged; the chat
-- adds what is new below what it shows, where the user reads on undisturbed (a window that
-- was at the end follows, as it does for a streaming answer).
local chat = require("deskmate.chat")
local client = require("deskmate.client")

local M = {}

local function last_id(view)
  local last = view.messages[#view.messages]
  return last and last.id
end

--- Brings the chat of `root` up to date after `change` (a deskmate/sessionChanged params table).
---@param root string
---@param change { sessionId: string, change: string, messageCount: integer }
function M.refresh(root, change)
  local view = chat.find(root)
  if not view or view.session_id ~= change.sessionId then
    return
  end
  if change.change == "deleted" then
    vim.notify(
      ("deskmate: session %s was deleted in another window."):format(change.sessionId),
      vim.log.levels.INFO
    )
    return
  end
  -- With the id of the last message shown, only what came after it; a turn asked here since the
  -- last load has no id yet, so then the whole history, matched against what is shown.
  local since = last_id(view)
  local args = { sessionId = change.sessionId }
  if since then
    args.sinceMessageId = since
  end
  client.exec(root, "deskmate.getSession", args, function(err, session)
    if err then
      return
    end
    local now = chat.find(root)
    if not now or now.session_id ~= change.sessionId then
      return
    end
    if now.answer_mark then
      -- An answer streams here: only labels can have changed elsewhere (the session is ours
      -- to answer in until it ends).
      return chat.set_labels(root, session)
    end
    if since and session.reset == false then
      chat.add_messages(root, session.messages or {}, session)
    else
      chat.catch_up(root, session)
    end
  end)
end

client.subscribe("deskmate/sessionChanged", function(params, lsp_client)
  if lsp_client and lsp_client.root_dir then
    M.refresh(lsp_client.root_dir, params)
  end
end)

return M
