-- The editor context sent with a question: a buffer's selection as a deskmate.ask `context`.
local M = {}

local function utf16(line, byte)
  byte = math.max(0, math.min(byte, #line))
  return vim.str_utfindex(line, "utf-16", byte, false)
end

local function uri_of(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == "" then
    return ("untitled:Untitled-%d"):format(bufnr)
  end
  if name:match("^%a[%w+.-]*:") and not name:match("^%a:[/\\]") then
    return name -- already a URI (e.g. oil://, fugitive://)
  end
  return vim.uri_from_fname(vim.fn.fnamemodify(name, ":p"))
end

--- The context for lines `line1`..`line2` (1-based, inclusive) of `bufnr`. When they match the
--- last visual selection, the selection is used as made (charwise, linewise or blockwise).
---@param bufnr integer
---@param line1 integer
---@param line2 integer
---@return table context { uri, range, text, languageId }
function M.from_range(bufnr, line1, line2)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local vstart, vend = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  local mode = vim.fn.visualmode()
  local lines, range
  if
    mode ~= ""
    and mode ~= "V"
    and vstart[2] == line1
    and vend[2] == line2
    and bufnr == vim.api.nvim_get_current_buf()
  then
    lines = vim.fn.getregion(vstart, vend, { type = mode })
    local first = vim.api.nvim_buf_get_lines(bufnr, line1 - 1, line1, false)[1] or ""
    local last = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ""
    local end_byte = math.min(vend[3], #last)
    if end_byte > 0 and end_byte <= #last then
      -- '> points at the first byte of the last selected character; include all of it.
      end_byte = end_byte + vim.str_utf_end(last, end_byte)
    end
    range = {
      start = { line = line1 - 1, character = utf16(first, vstart[3] - 1) },
      ["end"] = { line = line2 - 1, character = utf16(last, end_byte) },
    }
  else
    lines = vim.api.nvim_buf_get_lines(bufnr, line1 - 1, line2, false)
    range = {
      start = { line = line1 - 1, character = 0 },
      ["end"] = { line = line2 - 1, character = utf16(lines[#lines] or "", #(lines[#lines] or "")) },
    }
  end
  local context = {
    uri = uri_of(bufnr),
    range = range,
    text = table.concat(lines, "\n"),
  }
  local ft = vim.bo[bufnr].filetype
  if ft ~= "" then
    context.languageId = ft
  end
  return context
end

return M
