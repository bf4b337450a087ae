-- A small test runner for specs run as `nvim --headless --clean -l tests/<name>_spec.lua`.
--
-- Environment (set by tests/test_neovim_client.py, or by hand):
--   DESKMATE_TEST_BASE_URL  the model server, e.g. http://127.0.0.1:PORT/v1 (required)
--   DESKMATE_TEST_DATA_DIR  the daemon's data dir (required; a fresh temp dir per scenario)
--   DESKMATE_TEST_CMD       the daemon command (default: "deskmate lsp")
-- The working directory is the workspace the specs ask in.
local H = {}

local here = vim.fs.dirname(vim.fs.normalize(debug.getinfo(1, "S").source:sub(2)))
H.plugin_dir = vim.fs.dirname(vim.fn.fnamemodify(here, ":p"):gsub("/$", ""))

H.env = {
  base_url = assert(os.getenv("DESKMATE_TEST_BASE_URL"), "DESKMATE_TEST_BASE_URL is not set"),
  data_dir = assert(os.getenv("DESKMATE_TEST_DATA_DIR"), "DESKMATE_TEST_DATA_DIR is not set"),
  cmd = os.getenv("DESKMATE_TEST_CMD") or "deskmate lsp",
}

---@type { msg: string, level: integer }[]
H.notifications = {}

--- Loads the plugin as a plugin manager would (runtimepath, then plugin/), and records
--- notifications in H.notifications.
function H.load()
  vim.opt.runtimepath:prepend(H.plugin_dir)
  vim.cmd.runtime("plugin/deskmate.lua")
  local notify = vim.notify
  vim.notify = function(msg, level, opts)
    table.insert(H.notifications, { msg = msg, level = level or vim.log.levels.INFO })
    if os.getenv("DESKMATE_TEST_VERBOSE") then
      notify(msg, level, opts)
    end
  end
end

--- H.load(), then setup() for the test model server.
---@param overrides table? merged over the default test options
function H.setup(overrides)
  H.load()
  local opts = vim.tbl_deep_extend("force", {
    cmd = vim.split(H.env.cmd, "%s+", { trimempty = true }),
    settings = {
      baseUrl = H.env.base_url,
      model = "test-model",
      maxRetries = 0,
      requestTimeout = 20,
      dataDir = H.env.data_dir,
      -- Automatic titles race with specs that read titles (the daemon's tests cover them).
      autoTitle = false,
    },
  }, overrides or {})
  require("deskmate").setup(opts)
end

--- Runs the event loop until `cond()` is truthy; fails the test after `timeout` ms.
---@param what string what is awaited, for the failure message
---@param cond fun(): any
---@param timeout integer?
function H.wait(what, cond, timeout)
  timeout = timeout or 15000
  -- Own deadline rather than vim.wait's: conditions may themselves wait (H.exec).
  local deadline = vim.uv.hrtime() + timeout * 1e6
  while true do
    local value = cond()
    if value then
      return value
    end
    if vim.uv.hrtime() > deadline then
      error(("timed out after %d ms waiting for %s"):format(timeout, what), 2)
    end
    vim.wait(10)
  end
end

function H.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(("%s: expected %s, got %s"):format(what or "value", vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

function H.truthy(value, what)
  if not value then
    error((what or "value") .. " is not true", 2)
  end
  return value
end

function H.contains(haystack, needle, what)
  if type(haystack) ~= "string" or not haystack:find(needle, 1, true) then
    error(("%s: %s does not contain %s"):format(what or "text", vim.inspect(haystack), vim.inspect(needle)), 2)
  end
end

--- The workspace root the specs run in (the working directory).
function H.root()
  return require("deskmate.workspace").root(0)
end

function H.chat_text(root)
  local chat = require("deskmate.chat").find(root or H.root())
  if not chat then
    return ""
  end
  return table.concat(vim.api.nvim_buf_get_lines(chat.buf, 0, -1, false), "\n")
end

--- Calls a daemon command and waits for its result (for assertions, not for the plugin).
function H.exec(command, args)
  local done, err, result = false, nil, nil
  require("deskmate.client").exec(H.root(), command, args or {}, function(e, r)
    done, err, result = true, e, r
  end)
  H.wait(command, function()
    return done
  end)
  if err then
    error(command .. " failed: " .. vim.inspect(err), 2)
  end
  return result
end

--- The session a `deskmate.getSession` returns: `id`'s, else the workspace's active one.
function H.session(id)
  return H.exec("deskmate.getSession", id and { sessionId = id } or { workspaceUri = vim.uri_from_fname(H.root()) })
end

--- Puts the cursor, in the chat window, on the first line holding `text`.
function H.cursor_on(text)
  local view = require("deskmate.chat").find(H.root())
  local win = vim.fn.win_findbuf(view.buf)[1]
  vim.api.nvim_set_current_win(win)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(view.buf, 0, -1, false)) do
    if line:find(text, 1, true) then
      vim.api.nvim_win_set_cursor(win, { i, 0 })
      return
    end
  end
  error("no line with " .. text .. " in the chat")
end

--- Asks through the plugin and waits for the result.
function H.ask(question, opts)
  local done, err, result = false, nil, nil
  require("deskmate.ask").ask(vim.tbl_extend("force", {
    root = H.root(),
    question = question,
    on_done = function(e, r)
      done, err, result = true, e, r
    end,
  }, opts or {}))
  H.wait("the answer to " .. question, function()
    return done
  end, (opts and opts.timeout) or 20000)
  return result, err
end

--- Notifications at `level` or above whose text contains `needle`.
function H.notified(needle, level)
  local found = {}
  for _, n in ipairs(H.notifications) do
    if n.level >= (level or 0) and n.msg:find(needle, 1, true) then
      table.insert(found, n)
    end
  end
  return found
end

--- Replaces vim.ui.select with a function choosing by `pick(items, opts)`; records every call.
function H.stub_select(pick)
  local calls = {}
  vim.ui.select = function(items, opts, on_choice)
    local shown = vim.tbl_map(opts.format_item or tostring, items)
    table.insert(calls, { items = items, shown = shown, prompt = opts.prompt, kind = opts.kind })
    local choice = pick(items, opts, shown)
    vim.schedule(function()
      on_choice(choice)
    end)
  end
  return calls
end

--- GET a JSON document from the model server (its /_requests log, say).
function H.http_get_json(path)
  local host, port = H.env.base_url:match("^http://([^:/]+):(%d+)")
  local tcp = assert(vim.uv.new_tcp())
  local chunks, done, failure = {}, false, nil
  tcp:connect(host, tonumber(port), function(err)
    if err then
      failure, done = err, true
      return
    end
    tcp:write(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n"):format(path, host))
    tcp:read_start(function(rerr, data)
      if rerr or not data then
        failure = rerr
        done = true
        tcp:close()
      else
        table.insert(chunks, data)
      end
    end)
  end)
  H.wait("GET " .. path, function()
    return done
  end)
  assert(not failure, failure)
  local body = table.concat(chunks):match("\r\n\r\n(.*)$")
  return vim.json.decode(body)
end

local tests = {}

--- Registers a test; H.run() runs them in order.
function H.test(name, fn)
  table.insert(tests, { name = name, fn = fn })
end

--- Runs the registered tests, stops the daemons and exits with 0 when all passed.
function H.run()
  local failed = 0
  for i, t in ipairs(tests) do
    local started = vim.uv.hrtime()
    local ok, err = xpcall(t.fn, debug.traceback)
    local seconds = (vim.uv.hrtime() - started) / 1e9
    if ok then
      io.stdout:write(("ok %d - %s (%.1f s)\n"):format(i, t.name, seconds))
    else
      failed = failed + 1
      io.stdout:write(("not ok %d - %s\n"):format(i, t.name))
      io.stdout:write("  " .. tostring(err):gsub("\n", "\n  ") .. "\n")
      io.stdout:write("  notifications: " .. vim.inspect(H.notifications):gsub("\n", "\n  ") .. "\n")
    end
  end
  io.stdout:write(("1..%d (%d failed)\n"):format(#tests, failed))
  H.stop_daemons()
  os.exit(failed == 0 and 0 or 1)
end

--- Stops the daemons gracefully (shutdown/exit) and waits for them to go.
function H.stop_daemons()
  require("deskmate.client").stop()
  vim.wait(5000, function()
    return #vim.lsp.get_clients({ name = "deskmate" }) == 0
  end, 20)
end

return H
