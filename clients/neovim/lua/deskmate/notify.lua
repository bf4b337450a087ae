--- Error messages for the user, always prefixed "deskmate:" so they stand out among
--- other plugins' notifications.
local M = {}

-- The daemon names settings as VS Code does ("deskmate.baseUrl"); here they are set as
-- `settings.baseUrl` in require("deskmate").setup(). Command names (deskmate.ask) stay.
local SETTINGS = {
  model = true,
  baseUrl = true,
  apiKeyEnv = true,
  maxHistoryTokens = true,
  maxTokens = true,
  requestTimeout = true,
}

---@param message string
---@return string
function M.for_neovim(message)
  return (message:gsub("deskmate%.(%a+)", function(name)
    if SETTINGS[name] then
      return "settings." .. name
    end
  end))
end

---@param message string
function M.error(message)
  message = M.for_neovim(message)
  if not message:match("^deskmate") then
    message = "deskmate: " .. message
  end
  vim.notify(message, vim.log.levels.ERROR)
end

return M
