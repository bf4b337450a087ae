-- Project memory: facts the daemon sends with every question of the project, in every session
-- (deskmate.remember / deskmate.listMemories / deskmate.forget), and the instruction files it
-- reads (AGENTS.md, .deskmate/memory.md). The daemon keeps and sends them; this module asks
-- and shows.
local client = require("deskmate.client")
local workspace = require("deskmate.workspace")

local M = {}

---@type table<string, string[]> memory ids seen per root, for :Deskmate forget completion
local known_ids = {}

local notify_error = require("deskmate.notify").error

local function count_of(n, word)
  return ("%d %s%s"):format(n, word, n == 1 and "" or "s")
end

--- Keeps `text` in the project's memory.
---@param root string
---@param text string
---@param cb fun(err: table?, result: table?)?
function M.remember(root, text, cb)
  local args = { text = text, workspaceUri = workspace.uri(root) }
  client.exec(root, "deskmate.remember", args, function(err, result)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    local n = tonumber(result.count) or 1
    vim.notify(
      ("deskmate: remembered for every question in this project (%s); :Deskmate memories lists them."):format(
        n == 1 and "1 memory" or (n .. " memories")
      )
    )
    if cb then
      cb(nil, result)
    end
  end)
end

--- The project's memories and the instruction files read: `cb(result, err)`.
---@param root string
---@param cb fun(result: table?, err: table?)
function M.list(root, cb)
  client.exec(root, "deskmate.listMemories", { workspaceUri = workspace.uri(root) }, function(err, result)
    if err then
      return cb(nil, err)
    end
    known_ids[root] = vim.tbl_map(function(m)
      return m.memoryId
    end, result.memories or {})
    cb(result)
  end)
end

--- Memory ids seen in `root`, for completion; refreshed in the background.
---@param root string
---@return string[]
function M.ids(root)
  if client.running(root) then
    M.list(root, function() end)
  end
  return known_ids[root] or {}
end

--- Removes memory `id` from the project.
---@param root string
---@param id string
---@param cb fun(err: table?)?
function M.forget(root, id, cb)
  client.exec(root, "deskmate.forget", { memoryId = id, workspaceUri = workspace.uri(root) }, function(err)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    vim.notify("deskmate: forgotten; no question is sent it from now on.")
    if cb then
      cb()
    end
  end)
end

--- One line describing a memory in the picker.
---@param m table a listMemories memory
---@return string
function M.format(m)
  local text = tostring(m.text or ""):gsub("%s+", " ")
  return ("%s · %s"):format(text, require("deskmate.sessions").age(m.createdAt))
end

--- What the instruction files read say, for the picker's prompt and the notification.
---@param result table listMemories' result
---@return string
function M.describe_files(result)
  local names = vim.tbl_map(function(f)
    return vim.fn.fnamemodify(f.path, ":~:.") .. (f.truncated and " (cut)" or "")
  end, result.instructionFiles or {})
  for _, f in ipairs(result.refusedFiles or {}) do
    table.insert(names, vim.fn.fnamemodify(f.path, ":~:.") .. " (not read: " .. f.reason .. ")")
  end
  return #names > 0 and ("instructions read: " .. table.concat(names, ", ")) or "no AGENTS.md"
end

--- `vim.ui.select` over the project's memories; the chosen one can be forgotten.
---@param root string
---@param cb fun(err: table?)?
function M.pick(root, cb)
  M.list(root, function(result, err)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    local memories = result.memories or {}
    if #memories == 0 then
      vim.notify(
        ("deskmate: no memories in this project yet (:Deskmate remember {text}); %s."):format(M.describe_files(result))
      )
      return cb and cb()
    end
    vim.ui.select(memories, {
      prompt = ("deskmate memory (%s; %s)"):format(count_of(#memories, "fact"), M.describe_files(result)),
      kind = "deskmate.memories",
      format_item = M.format,
    }, function(memory)
      if not memory then
        return cb and cb()
      end
      vim.ui.select({ "Forget it", "Keep it" }, {
        prompt = ("Memory %q"):format(memory.text),
        kind = "deskmate.memory_action",
      }, function(action)
        if action == "Forget it" then
          M.forget(root, memory.memoryId, cb)
        elseif cb then
          cb()
        end
      end)
    end)
  end)
end

return M
