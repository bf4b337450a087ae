-- :checkhealth deskmate reports ok against a working daemon.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local function report()
  vim.cmd("checkhealth deskmate")
  local buf = vim.api.nvim_get_current_buf()
  return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
end

H.test(":checkhealth deskmate reports ok", function()
  local text = report()
  io.stdout:write("  " .. text:gsub("\n", "\n  ") .. "\n")
  H.contains(text, "OK Neovim 0.", "Neovim version")
  H.contains(text, "OK daemon command found", "daemon")
  H.contains(text, "OK daemon version ", "daemon version")
  H.contains(text, "OK project path:", "the project (the test folder is no repository)")
  H.contains(text, ".deskmate/project", "how to pin it")
  H.contains(text, 'OK model "test-model" at ' .. H.env.base_url, "model")
  H.contains(text, "OK model server: " .. H.env.base_url .. " answers and serves 'test-model'.", "server checked")
  H.contains(text, "OK data directory writable: ", "data dir")
  H.contains(text, "retention: none, nothing expires; deleted sessions stay in the trash 30 days", "retention")
  H.truthy(not text:find("ERROR", 1, true), "no errors")
  H.truthy(not text:find("WARNING", 1, true), "no warnings")
end)

H.test(":checkhealth deskmate shows no password, secret parameter or API key", function()
  H.stop_daemons()
  pcall(vim.cmd.tabclose)
  local with_login = H.env.base_url:gsub("://", "://deskmate:planted/pw@3141@", 1) .. "?api_key=planted-token"
  H.setup({ settings = { baseUrl = with_login, apiKey = "sk-planted-nvim-key" } })
  local text = report()
  for _, secret in ipairs({ "planted/pw", "pw@3141", "planted-token", "sk-planted-nvim-key" }) do
    H.truthy(not text:find(secret, 1, true), secret .. " in:\n" .. text)
  end
  H.contains(text, "at http://deskmate:***@", "the login masked, the user kept")
  H.contains(text, "?api_key=***", "the secret parameter masked")
  H.contains(text, "OK API key configured", "the key itself is never shown")
end)

H.test(":checkhealth deskmate says what failed when the model server is down", function()
  H.stop_daemons()
  pcall(vim.cmd.tabclose)
  -- A port nothing listens on: the check fails at once, within its short timeout.
  local socket = vim.uv.new_tcp()
  socket:bind("127.0.0.1", 0)
  local port = socket:getsockname().port
  socket:close()
  H.setup({ settings = { baseUrl = ("http://127.0.0.1:%d/v1"):format(port) } })
  local started = vim.uv.hrtime()
  local text = report()
  H.contains(text, ("ERROR model server: cannot reach http://127.0.0.1:%d/v1"):format(port), "what failed")
  H.contains(text, "Is it running?", "what to do")
  H.truthy((vim.uv.hrtime() - started) / 1e9 < 10, "a short check")
end)

H.test(":checkhealth deskmate reports encryption on without a key as an error", function()
  H.stop_daemons()
  pcall(vim.cmd.tabclose)
  vim.env.DESKMATE_ENCRYPTION_KEY_FILE = H.env.data_dir .. "/no-such.key"
  H.setup({ settings = { encryption = "on", compression = "zstd" } })
  local text = report()
  vim.env.DESKMATE_ENCRYPTION_KEY_FILE = nil
  H.contains(text, "ERROR encryption is on but the daemon has no key", "the missing key")
  H.contains(text, "deskmate keys init", "what to do")
  H.contains(text, "stored messages are compressed (zstd)", "compression")
end)

H.test(":checkhealth deskmate reports a missing daemon as an error", function()
  H.stop_daemons()
  pcall(vim.cmd.tabclose)
  require("deskmate").setup({ cmd = { "deskmate-no-such-command" }, bogus = 1 })
  local text = report()
  H.contains(text, 'ERROR daemon command "deskmate-no-such-command" not found', "missing daemon")
  H.contains(text, 'WARNING setup(): unknown option "bogus"', "bad option")
end)

H.run()
