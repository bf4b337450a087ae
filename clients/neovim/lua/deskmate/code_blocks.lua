-- The code blocks of an answer in the chat: yank the one under the cursor, or apply it to the
-- code window (below its cursor; `u` there undoes it).
local M = {}

local function is_fence(line)
  return line:match("^%s*```") ~= nil or line:match("^%s*~~~") ~= nil
end

--- The code block around `row` (1-based) of `buf` (its fences included): its lines and language.
---@param buf integer
---@param row integer
---@return string[]? lines, string? language
function M.at(buf, row)
  local lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  local open
  for i, line in ipairs(lines) do
    if is_fence(line) then
      if open == nil then
        open = i
      else
        if open <= row and row <= i then
          local language = lines[open]:match("^%s*[`~]+%s*([%w_+.-]*)")
          return vim.list_slice(lines, open + 1, i - 1), language ~= "" and language or nil
        end
        open = nil
      end
    end
  end
  return nil
end

local function under_cursor()
  local buf = vim.api.nvim_get_current_buf()
  local code = M.at(buf, vim.api.nvim_win_get_cursor(0)[1])
  if not code then
    vim.notify("deskmate: put the cursor in a code block of an answer.", vim.log.levels.WARN)
  end
  return code
end

--- Yanks the code block under the cursor into the register given (default: the unnamed one).
function M.yank()
  local code = under_cursor()
  if not code then
    return
  end
  local register = vim.v.register
  vim.fn.setreg(register, code, "l")
  vim.notify(("deskmate: yanked %d line%s of code."):format(#code, #code == 1 and "" or "s"))
end

--- Applies the code block under the cursor to the code window, below its cursor.
function M.apply()
  local code = under_cursor()
  if not code then
    return
  end
  local win = require("deskmate.chat_context").source_window()
  if not win then
    return vim.notify("deskmate: open a file in a window to apply the code to.", vim.log.levels.WARN)
  end
  local buf = vim.api.nvim_win_get_buf(win)
  if not vim.bo[buf].modifiable then
    return vim.notify("deskmate: that buffer cannot be changed.", vim.log.levels.WARN)
  end
  local row = vim.api.nvim_win_get_cursor(win)[1]
  vim.api.nvim_buf_set_lines(buf, row, row, false, code)
  vim.notify(("deskmate: applied %d line%s below line %d of %s."):format(
    #code,
    #code == 1 and "" or "s",
    row,
    vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ":t")
  ))
end

--- The chat buffer's keymaps for code blocks: gy yanks, ga applies.
---@param buf integer
function M.keymaps(buf)
  vim.keymap.set("n", "gy", M.yank, { buffer = buf, silent = true, desc = "deskmate: yank the code block" })
  vim.keymap.set("n", "ga", M.apply, { buffer = buf, silent = true, desc = "deskmate: apply the code block" })
end

return M
