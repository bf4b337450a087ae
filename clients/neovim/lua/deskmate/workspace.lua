-- Which workspace root a buffer belongs to. Each root gets its own daemon and chat.
local config = require("deskmate.config")

local M = {}

local function normalize(path)
  path = vim.fs.normalize(vim.fn.fnamemodify(path, ":p"))
  if #path > 1 then
    path = path:gsub("/+$", "")
  end
  return path
end

--- The root of `bufnr` (default: current buffer): the nearest ancestor holding any of the
--- `root_markers`, else the current directory. The plugin's own buffers carry their root.
---@param bufnr integer?
---@return string
function M.root(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local own = vim.b[bufnr].deskmate_root
  if own then
    return own
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  local start
  if name ~= "" and vim.bo[bufnr].buftype == "" and not name:match("^%a[%w+.-]*://") then
    start = vim.fs.dirname(normalize(name))
  else
    start = vim.fn.getcwd()
  end
  -- One nested list: all markers have the same priority, the nearest folder wins.
  local found = vim.fs.root(start, { config.options.root_markers })
  return normalize(found or vim.fn.getcwd())
end

--- `path` (absolute) relative to `root`, or nil when it is not inside `root`.
---@param root string
---@param path string
---@return string?
function M.relative(root, path)
  local prefix = root:gsub("/$", "") .. "/"
  if path:sub(1, #prefix) == prefix then
    return path:sub(#prefix + 1)
  end
  return nil
end

---@param root string
---@return string
function M.uri(root)
  return vim.uri_from_fname(root)
end

return M
