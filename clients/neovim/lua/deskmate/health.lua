-- :checkhealth deskmate
local M = {}

local health = vim.health

-- :checkhealth is synchronous by nature, so this is the one place that waits for the daemon.
local function status(root, timeout)
  local client = require("deskmate.client")
  local done, err, result = false, nil, nil
  -- checkModel: the daemon asks the model server too (for 2 s at most).
  client.exec(root, "deskmate.status", { checkModel = true, workspaceUri = vim.uri_from_fname(root) }, function(e, r)
    done, err, result = true, e, r
  end)
  if not vim.wait(timeout, function()
    return done
  end, 20) then
    return nil, ("no answer from the daemon within %d s"):format(timeout / 1000)
  end
  if err then
    return nil, err.message
  end
  return result
end

function M.check()
  local config = require("deskmate.config")
  local redact = require("deskmate.redact")
  local deskmate = require("deskmate")

  health.start("deskmate")
  local v = vim.version()
  local version = ("%d.%d.%d"):format(v.major, v.minor, v.patch)
  if vim.fn.has("nvim-0.11") == 1 then
    health.ok("Neovim " .. version)
  else
    health.error("Neovim " .. version .. " is too old", "deskmate needs Neovim 0.11 or newer.")
    return
  end
  health.info("plugin version " .. deskmate.version)
  if #config.problems > 0 then
    for _, problem in ipairs(config.problems) do
      health.warn("setup(): " .. problem, "See :help deskmate-setup.")
    end
  else
    health.ok("setup() options are valid")
  end

  health.start("deskmate: daemon")
  local cmd = config.options.cmd
  local exe = vim.fn.exepath(cmd[1])
  if exe == "" then
    health.error(
      ("daemon command %q not found"):format(cmd[1]),
      { "Install it: pip install deskmate", "or set `cmd` in require('deskmate').setup()" }
    )
    return
  end
  health.ok(("daemon command found: %s (%s)"):format(redact.text(table.concat(cmd, " ")), exe))

  local root = require("deskmate.workspace").root(0)
  local info, err = status(root, 15000)
  if not info then
    health.error("the daemon did not answer deskmate.status: " .. tostring(err), "See :LspLog.")
    return
  end
  health.ok("daemon version " .. tostring(info.version) .. " (workspace " .. root .. ")")
  if type(info.projectId) == "string" then
    health.ok(("project %s (from %s)"):format(info.projectId, tostring(info.projectSource)))
    if info.projectSource == "path" then
      health.info(
        "the project is known by its path only: moved, it starts afresh. A git repository with a commit, "
          .. "or a .deskmate/project file holding an id, keeps it (:help deskmate-projects)"
      )
    end
  end

  health.start("deskmate: model")
  -- The daemon reports baseUrl as set; a login in it must not reach the screen.
  local base = type(info.baseUrl) == "string" and redact.url(info.baseUrl) or nil
  if type(info.model) == "string" and info.model ~= "" then
    health.ok(("model %q at %s"):format(info.model, base or "the OpenAI API"))
  else
    health.error("no model configured", "Set `settings.model` in setup() or $DESKMATE_MODEL.")
  end
  local server = info.modelServer
  if type(server) == "table" and server.ok then
    health.ok("model server: " .. redact.text(tostring(server.message)))
  elseif type(server) == "table" then
    health.error("model server: " .. redact.text(tostring(server.message)), {
      "Start the model server, or point settings.baseUrl at one (e.g. http://127.0.0.1:11434/v1)",
      "and settings.model at a model it serves.",
    })
  end
  if info.apiKeyConfigured then
    health.ok("API key configured")
  elseif base then
    health.ok("no API key; none is sent to " .. base)
  else
    health.error(
      "no API key and no baseUrl",
      { "Set OPENAI_API_KEY (or the variable named by settings.apiKeyEnv)", "or settings.baseUrl for a local server" }
    )
  end

  health.start("deskmate: storage")
  local dir = info.dataDir ~= vim.NIL and info.dataDir or "?"
  if info.dataDirWritable then
    health.ok("data directory writable: " .. dir)
  else
    health.error("data directory not writable: " .. dir, "Fix its permissions or set settings.dataDir.")
  end
  local storage = info.storage ~= vim.NIL and info.storage or nil
  if storage and not vim.startswith(storage, "file://") then
    if info.storageUnavailable ~= nil and info.storageUnavailable ~= vim.NIL then
      health.warn(
        "shared store unreachable: " .. redact.text(tostring(info.storageUnavailable)),
        "Answers go on; turns wait in the local outbox and are stored when it is back."
      )
    else
      health.ok("shared store: " .. redact.text(storage))
    end
  end
  if info.autoSave == false then
    health.info("autoSave is off: sessions are stored only on deskmate.saveSession")
  end
  if info.encryption == "on" then
    if type(info.encryptionKeyId) == "string" then
      health.ok("sessions are encrypted with key " .. info.encryptionKeyId)
    else
      health.error(
        "encryption is on but the daemon has no key: nothing can be stored",
        { "Run `deskmate keys init`", "or set DESKMATE_ENCRYPTION_KEY / DESKMATE_ENCRYPTION_KEY_FILE" }
      )
    end
  end
  if info.compression == "zstd" then
    health.info("stored messages are compressed (zstd)")
  end
  local trash_days = tonumber(info.trashDays) or 30
  if type(info.retentionDays) == "number" then
    local soon = tonumber(info.expiringIn7Days)
    health.info(
      ("retention: sessions unused for %d days go to the trash (%s within 7 days); the trash keeps them %d days"):format(
        info.retentionDays,
        soon and tostring(soon) or "?",
        trash_days
      )
    )
  else
    health.info(("retention: none, nothing expires; deleted sessions stay in the trash %d days"):format(trash_days))
  end
end

return M
