-- Options of require("deskmate").setup(), with their defaults in one place.
local M = {}

---@class deskmate.Config
---@field cmd string[] the daemon command; it speaks LSP on stdio
---@field settings table<string, any> sent to the daemon (see docs/protocol.md "Settings")
---@field root_markers string[] files or dirs marking a workspace root (the nearest wins)
---@field keymaps table<string, string|false> opt-in global keymaps, action -> lhs
---@field chat { width: number, input_height: integer }

---@type deskmate.Config
M.defaults = {
  cmd = { "deskmate", "lsp" },
  settings = {},
  -- The daemon's own list (ROOT_MARKERS in engine/workspaces.py), so the terminal's
  -- `deskmate ask` and Neovim pick the same project and session; a test holds them equal.
  root_markers = { ".git", ".hg", ".svn", ".deskmate" },
  -- Nothing is mapped unless the user names a key here.
  keymaps = {
    ask = false, -- normal mode: prompt for a question; visual mode: ask about the selection
    chat = false,
    sessions = false,
    new = false,
    cancel = false,
    export = false,
  },
  chat = {
    width = 0.4, -- a fraction of the editor's columns, or a column count when > 1
    input_height = 3,
  },
}

---@type deskmate.Config
M.options = vim.deepcopy(M.defaults)

--- Problems found in the last setup() call, for :checkhealth.
---@type string[]
M.problems = {}

local function check(opts)
  local problems = {}
  local function expect(name, value, kind)
    if value ~= nil and type(value) ~= kind then
      table.insert(problems, ("%s should be a %s, got %s"):format(name, kind, type(value)))
      return false
    end
    return true
  end
  for key in pairs(opts) do
    if M.defaults[key] == nil then
      table.insert(problems, ("unknown option %q"):format(key))
    end
  end
  if type(opts.cmd) == "string" then
    opts.cmd = vim.split(opts.cmd, "%s+", { trimempty = true })
  end
  if expect("cmd", opts.cmd, "table") and opts.cmd and #opts.cmd == 0 then
    table.insert(problems, "cmd is empty")
    opts.cmd = nil
  end
  expect("settings", opts.settings, "table")
  expect("root_markers", opts.root_markers, "table")
  expect("chat", opts.chat, "table")
  if expect("keymaps", opts.keymaps, "table") and opts.keymaps then
    for action in pairs(opts.keymaps) do
      if M.defaults.keymaps[action] == nil then
        table.insert(problems, ("unknown keymap %q"):format(action))
      end
    end
  end
  return problems
end

--- Merges user options over the defaults. Bad values are reported and replaced by defaults.
---@param opts table?
---@return deskmate.Config
function M.set(opts)
  opts = vim.deepcopy(opts or {})
  M.problems = check(opts)
  for _, key in ipairs({ "cmd", "settings", "root_markers", "chat", "keymaps" }) do
    if opts[key] ~= nil and type(opts[key]) ~= "table" then
      opts[key] = nil
    end
  end
  local merged = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts)
  -- Lists replace rather than merge.
  merged.cmd = opts.cmd or M.defaults.cmd
  merged.root_markers = opts.root_markers or M.defaults.root_markers
  M.options = merged
  if #M.problems > 0 then
    vim.notify("deskmate: setup(): " .. table.concat(M.problems, "; "), vim.log.levels.WARN)
  end
  return merged
end

return M
