-- Transport: one deskmate daemon per workspace root, driven through Neovim's own LSP client.
-- Nothing here knows about windows or buffers; notifications go to subscribers.
local config = require("deskmate.config")
local workspace = require("deskmate.workspace")

local M = {}

M.name = "deskmate"

---@type table<string, fun(client: vim.lsp.Client)[]> callbacks waiting for a root's daemon
local waiting = {}
---@type table<string, fun(params: table, client: vim.lsp.Client)[]>
local subscribers = {}
---@type table<integer, boolean> clients stopped on purpose, so their exit is not reported
local stopping = {}

--- Calls `fn(params, client)` for every notification `method` from any deskmate daemon.
---@param method string
---@param fn fun(params: table, client: vim.lsp.Client)
function M.subscribe(method, fn)
  subscribers[method] = subscribers[method] or {}
  table.insert(subscribers[method], fn)
end

local function dispatch(method)
  return function(_, params, ctx)
    local client = vim.lsp.get_client_by_id(ctx.client_id)
    for _, fn in ipairs(subscribers[method] or {}) do
      fn(params, client)
    end
  end
end

local levels = { vim.log.levels.ERROR, vim.log.levels.WARN, vim.log.levels.INFO, vim.log.levels.DEBUG }

-- The built-in handler only echoes non-errors; vim.notify lets notification plugins show them
-- with the right level (the corrupt-history warning must not go unnoticed).
local function show_message(_, params)
  local message = params.message or ""
  if not message:match("^deskmate") then
    message = "deskmate: " .. message
  end
  vim.notify(message, levels[params.type] or vim.log.levels.INFO)
  return vim.NIL
end

local function settings()
  return vim.deepcopy(config.options.settings or {})
end

--- Registers the server config with vim.lsp.config, so users can inspect or extend it
--- (`vim.lsp.config("deskmate", {...})`) like any other server.
function M.register()
  local s = settings()
  -- An empty Lua table would go out as a JSON array; leave empty settings out instead.
  vim.lsp.config(M.name, {
    cmd = config.options.cmd,
    root_markers = config.options.root_markers,
    init_options = next(s) and s or nil,
    settings = next(s) and { deskmate = s } or nil,
  })
end

--- Sends the current settings to every running daemon (after a second setup() call).
function M.push_settings()
  local s = settings()
  local payload = { deskmate = next(s) and s or vim.empty_dict() }
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
    client.settings = payload
    client:notify("workspace/didChangeConfiguration", { settings = payload })
  end
end

local function finish_waiting(root, client, err)
  local callbacks = waiting[root] or {}
  waiting[root] = nil
  for _, cb in ipairs(callbacks) do
    cb(client, err)
  end
end

--- The running, initialized daemon client of `root`, if there is one.
---@param root string
---@return vim.lsp.Client?
function M.running(root)
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
    if client.root_dir == root and not client:is_stopped() and client.initialized then
      return client
    end
  end
end

--- Calls `cb(client)` once the daemon of `root` is initialized, starting it when needed,
--- or `cb(nil, message)` when it cannot start.
---@param root string
---@param cb fun(client: vim.lsp.Client?, err: string?)
function M.with_client(root, cb)
  local client = M.running(root)
  if client then
    return cb(client)
  end
  if waiting[root] then
    table.insert(waiting[root], cb)
    return
  end
  local cmd = config.options.cmd
  if vim.fn.executable(cmd[1]) ~= 1 then
    return cb(
      nil,
      ("deskmate: the daemon command %q was not found. Install it (pip install deskmate) or set `cmd` in require('deskmate').setup()."):format(
        cmd[1]
      )
    )
  end
  waiting[root] = { cb }
  if not vim.lsp.config[M.name] then
    M.register()
  end
  local lsp_config = vim.tbl_extend("force", vim.deepcopy(vim.lsp.config[M.name]), {
    name = M.name,
    cmd = cmd,
    root_dir = root,
    workspace_folders = { { uri = workspace.uri(root), name = vim.fs.basename(root) } },
    handlers = vim.tbl_extend("force", vim.lsp.config[M.name].handlers or {}, {
      ["deskmate/askDelta"] = dispatch("deskmate/askDelta"),
      ["deskmate/sessionChanged"] = dispatch("deskmate/sessionChanged"),
      ["window/showMessage"] = show_message,
    }),
    on_init = function(c)
      finish_waiting(root, c)
    end,
    on_exit = function(code, signal, client_id)
      vim.schedule(function()
        local on_purpose = stopping[client_id]
        stopping[client_id] = nil
        local message = ("deskmate: the daemon stopped (exit code %d%s). See :LspLog."):format(
          code,
          signal ~= 0 and (", signal " .. signal) or ""
        )
        finish_waiting(root, nil, message)
        for _, fn in ipairs(subscribers["exit"] or {}) do
          fn({ root = root, client_id = client_id, code = code }, nil)
        end
        if not on_purpose and (code ~= 0 or signal ~= 0) then
          vim.notify(message, vim.log.levels.ERROR)
        end
      end)
    end,
  })
  local id = vim.lsp.start(lsp_config, {
    attach = false,
    silent = true,
    reuse_client = function(c, conf)
      return c.name == conf.name and c.root_dir == conf.root_dir and not c:is_stopped()
    end,
  })
  if not id then
    finish_waiting(root, nil, ("deskmate: could not start the daemon (%s). See :LspLog."):format(table.concat(cmd, " ")))
    return
  end
  -- A reused client that is already initialized never calls on_init again.
  local started = vim.lsp.get_client_by_id(id)
  if started and started.initialized then
    finish_waiting(root, started)
  end
end

--- Runs a daemon command (`deskmate.ask`, ...) for `root`; `cb(err, result)` gets the JSON-RPC
--- error (with `.message`) or the result object. Never blocks.
---@param root string
---@param command string
---@param args table?
---@param cb fun(err: { code: integer?, message: string }?, result: table?)
function M.exec(root, command, args, cb)
  M.with_client(root, function(client, start_err)
    if not client then
      return cb({ message = start_err })
    end
    local provider = client.server_capabilities.executeCommandProvider
    local commands = type(provider) == "table" and provider.commands or {}
    if not vim.list_contains(commands, command) then
      return cb({ message = ("deskmate: this daemon does not offer %s; update deskmate."):format(command) })
    end
    local arguments = { (args and next(args)) and args or vim.empty_dict() }
    client:exec_cmd({ title = command, command = command, arguments = arguments }, {}, function(err, result)
      cb(err, result)
    end)
  end)
end

--- Stops the daemon of `root` (or all daemons) without reporting its exit as an error.
---@param root string?
function M.stop(root)
  for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
    if root == nil or client.root_dir == root then
      stopping[client.id] = true
      client:stop()
    end
  end
end

return M
