-- The model picker: the models the server offers (deskmate.listModels), and the one this
-- workspace uses (deskmate.setModel), shown in the chat's winbar.
local client = require("deskmate.client")
local workspace = require("deskmate.workspace")
local notify_error = require("deskmate.notify").error

local M = {}

---@type table<string, string[]> model ids last listed, by root: what completion offers
local known = {}

--- Calls `cb(models, current)` with the server's models; notifies and calls `cb(nil)` on error.
---@param root string
---@param cb fun(models: string[]?, current: string?)
function M.list(root, cb)
  client.exec(root, "deskmate.listModels", { workspaceUri = workspace.uri(root) }, function(err, result)
    if err then
      notify_error(err.message)
      return cb(nil)
    end
    local ids = vim.tbl_map(function(model)
      return model.id
    end, result.models or {})
    known[root] = ids
    cb(ids, result.current)
  end)
end

--- Model ids for `:Deskmate model <Tab>`; refreshed in the background.
---@param root string
---@return string[]
function M.completion(root)
  if client.running(root) then
    client.exec(root, "deskmate.listModels", { workspaceUri = workspace.uri(root) }, function(err, result)
      if not err then
        known[root] = vim.tbl_map(function(model)
          return model.id
        end, result.models or {})
      end
    end)
  end
  return known[root] or {}
end

--- Uses `model` for the workspace's asks from now on; the chat's winbar shows it.
---@param root string
---@param model string
---@param cb fun(err: table?)?
function M.set(root, model, cb)
  client.exec(root, "deskmate.setModel", { workspaceUri = workspace.uri(root), model = model }, function(err, result)
    if err then
      notify_error(err.message)
      return cb and cb(err)
    end
    require("deskmate.chat").set_model(root, result.model)
    vim.notify(("deskmate: this workspace now asks %s."):format(result.model))
    if cb then
      cb(nil)
    end
  end)
end

--- `vim.ui.select` over the server's models (the current one marked), then use the one chosen.
---@param root string
---@param cb fun(err: table?)?
function M.pick(root, cb)
  M.list(root, function(models, current)
    if not models then
      return cb and cb({ message = "no models" })
    end
    if #models == 0 then
      vim.notify("deskmate: the model server lists no models.", vim.log.levels.WARN)
      return cb and cb()
    end
    vim.ui.select(models, {
      prompt = "deskmate model",
      kind = "deskmate.model",
      format_item = function(id)
        return (id == current and "● " or "  ") .. id
      end,
    }, function(id)
      if not id then
        return cb and cb()
      end
      M.set(root, id, cb)
    end)
  end)
end

return M
