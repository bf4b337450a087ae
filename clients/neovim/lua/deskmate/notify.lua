--- Error messages for the user, always prefixed "deskmate:" so they stand out among
--- other plugins' notifications.
local M = {}

---@param message string
function M.error(message)
  if not message:match("^deskmate") then
    message = "deskmate: " .. message
  end
  vim.notify(message, vim.log.levels.ERROR)
end

return M
