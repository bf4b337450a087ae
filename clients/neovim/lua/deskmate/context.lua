-- The editor context sent with a question: a buffer's selection as a deskmate.ask `context`,
-- and how the chat names what went along ("calc.py:8-12").
local workspace = require("deskmate.workspace")

local M = {}

local function utf16(line, byte)
  byte = math.max(0, math.min(byte, #line))
  return vim.str_utfindex(line, "utf-16", byte, false)
end

function M.uri_of(bufnr)
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
    uri = M.uri_of(bufnr),
    range = range,
    text = table.concat(lines, "\n"),
  }
  local ft = vim.bo[bufnr].filetype
  if ft ~= "" then
    context.languageId = ft
  end
  return context
end

--- The context for whole lines `first`..`last` (1-based, inclusive) of `bufnr`.
---@param bufnr integer
---@param first integer
---@param last integer
---@return table context { uri, range, text, languageId }
function M.from_lines(bufnr, first, last)
  local lines = vim.api.nvim_buf_get_lines(bufnr, first - 1, last, false)
  local context = {
    uri = M.uri_of(bufnr),
    range = {
      start = { line = first - 1, character = 0 },
      ["end"] = { line = last - 1, character = utf16(lines[#lines] or "", #(lines[#lines] or "")) },
    },
    text = table.concat(lines, "\n"),
  }
  if vim.bo[bufnr].filetype ~= "" then
    context.languageId = vim.bo[bufnr].filetype
  end
  return context
end

--- How the chat names a piece of context: its path (relative to `root`) and lines, "calc.py:8-12".
---@param item table a context {uri, range?}
---@param root string?
---@return string
function M.label(item, root)
  local uri = item.uri or ""
  local name = uri
  if uri:match("^file:") then
    name = vim.uri_to_fname(uri)
    name = root and workspace.relative(root, name) or vim.fn.fnamemodify(name, ":~:.")
  end
  local range = type(item.range) == "table" and item.range or nil
  if range then
    local first, last = range.start.line + 1, range["end"].line + 1
    if range["end"].character == 0 and last > first then
      last = last - 1 -- a range ending at a line's start does not hold that line
    end
    return ("%s:%s"):format(name, first == last and first or (first .. "-" .. last))
  end
  return name
end

--- The note under a question saying what went along: "*(with calc.py:8-12, util.py)*", or nil.
---@param context table? a stored or sent context (with its attachments)
---@param attachments table[]? attachments not yet inside `context`
---@param root string?
---@return string?
function M.note(context, attachments, root)
  local items = {}
  if type(context) == "table" then
    table.insert(items, context)
    for _, item in ipairs(type(context.attachments) == "table" and context.attachments or {}) do
      table.insert(items, item)
    end
  end
  vim.list_extend(items, attachments or {})
  if #items == 0 then
    return nil
  end
  local labels = vim.tbl_map(function(item)
    return M.label(item, root)
  end, items)
  return ("*(with %s)*"):format(table.concat(labels, ", "))
end

return M
