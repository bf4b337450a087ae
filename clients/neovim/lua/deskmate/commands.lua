-- The :Deskmate user command: subcommands and their completion.
local M = {}

local function deskmate()
  return require("deskmate")
end

local function session_ids(arglead)
  local root = require("deskmate.workspace").root(0)
  return vim.tbl_filter(function(id)
    return vim.startswith(id, arglead)
  end, require("deskmate.sessions").completion_ids(root))
end

local function session_names(arglead)
  local root = require("deskmate.workspace").root(0)
  return vim.tbl_filter(function(name)
    return vim.startswith(name:lower(), arglead:lower())
  end, require("deskmate.sessions").completion_names(root))
end

local function trashed_ids(arglead)
  local root = require("deskmate.workspace").root(0)
  return vim.tbl_filter(function(id)
    return vim.startswith(id, arglead)
  end, require("deskmate.sessions").trash_ids(root))
end

local function memory_ids(arglead)
  local root = require("deskmate.workspace").root(0)
  return vim.tbl_filter(function(id)
    return vim.startswith(id, arglead)
  end, require("deskmate.memory").ids(root))
end

---@class deskmate.Subcommand
---@field run fun(args: string, opts: table)
---@field complete? fun(arglead: string): string[]
---@field help string

---@type table<string, deskmate.Subcommand>
M.subcommands = {
  ask = {
    help = "ask {question}: ask; over a range, the selection goes along",
    run = function(args, opts)
      local range = opts.range > 0 and { opts.line1, opts.line2 } or nil
      deskmate().ask(args, range)
    end,
  },
  chat = {
    help = "chat: open or close the chat window",
    run = function()
      deskmate().chat()
    end,
  },
  sessions = {
    help = "sessions: pick a session to switch to or move to the trash",
    run = function()
      deskmate().sessions()
    end,
  },
  new = {
    help = "new [title]: start a new session",
    run = function(args)
      deskmate().new(args ~= "" and args or nil)
    end,
  },
  switch = {
    help = "switch {title|id}: make a session the active one (<Tab> completes titles)",
    run = function(args)
      if args == "" then
        return deskmate().sessions()
      end
      local root = require("deskmate.workspace").root(0)
      deskmate().switch(require("deskmate.sessions").resolve(root, args))
    end,
    complete = session_names,
  },
  model = {
    help = "model [name]: pick the model this workspace asks (<Tab> completes the server's models)",
    run = function(args)
      deskmate().model(args ~= "" and args or nil)
    end,
    complete = function(arglead)
      local root = require("deskmate.workspace").root(0)
      return vim.tbl_filter(function(id)
        return vim.startswith(id, arglead)
      end, require("deskmate.models").completion(root))
    end,
  },
  add = {
    help = "add {file}: send a workspace file along with the next question in the chat",
    run = function(args)
      deskmate().add(args)
    end,
    complete = function(arglead)
      return vim.fn.getcompletion(arglead, "file")
    end,
  },
  delete = {
    help = "delete [id]: move a session to the trash (default: the active one); :Deskmate restore undoes it",
    run = function(args)
      deskmate().delete(args ~= "" and args or nil)
    end,
    complete = session_ids,
  },
  restore = {
    help = "restore [id]: take a session out of the trash (without id: pick one)",
    run = function(args)
      deskmate().restore(args ~= "" and args or nil)
    end,
    complete = trashed_ids,
  },
  trash = {
    help = "trash: list the trash; restore, delete permanently or empty it",
    run = function()
      deskmate().trash()
    end,
  },
  fork = {
    help = "fork [title]: in the chat, a new session up to the message under the cursor",
    run = function(args)
      deskmate().fork(args ~= "" and args or nil)
    end,
  },
  edit = {
    help = "edit: in the chat, edit the question under the cursor; :w resends it in a fork",
    run = function()
      deskmate().edit()
    end,
  },
  retry = {
    help = "retry: ask the question of the answer under the cursor (or the last one) again, in a fork",
    run = function()
      deskmate().retry()
    end,
  },
  cancel = {
    help = "cancel: stop the answer being written",
    run = function()
      deskmate().cancel()
    end,
  },
  search = {
    help = "search {query}: search this workspace's sessions (! searches all); open a result at its message",
    run = function(args, opts)
      deskmate().search(args, opts.bang)
    end,
  },
  rename = {
    help = "rename [title]: rename the session",
    run = function(args)
      deskmate().rename(args ~= "" and args or nil)
    end,
  },
  tag = {
    help = "tag {tag}…: tag the session (-tag removes a tag)",
    run = function(args)
      deskmate().tag(args)
    end,
  },
  pin = {
    help = "pin: in the chat, pin the message under the cursor (always sent, never summarized); "
      .. "elsewhere, pin the session to the top of every listing; ! unpins",
    run = function(_, opts)
      deskmate().pin(not opts.bang)
    end,
  },
  remember = {
    help = "remember {text}: keep a fact for every question in this project (every session)",
    run = function(args)
      deskmate().remember(args ~= "" and args or nil)
    end,
  },
  memories = {
    help = "memories: the project's memories and instruction files read (AGENTS.md); forget one",
    run = function()
      deskmate().memories()
    end,
  },
  forget = {
    help = "forget [id]: forget a project memory (without id: pick one)",
    run = function(args)
      deskmate().forget(args ~= "" and args or nil)
    end,
    complete = memory_ids,
  },
  compact = {
    help = "compact [instructions]: summarize the turns before the latest one (the messages stay)",
    run = function(args)
      deskmate().compact(args ~= "" and args or nil)
    end,
  },
  uncompact = {
    help = "uncompact: drop the session's summary; the next ask sends those messages again",
    run = function()
      deskmate().uncompact()
    end,
  },
  export = {
    help = "export: the session as Markdown in a new buffer",
    run = function()
      deskmate().export()
    end,
  },
}

local function names()
  local list = vim.tbl_keys(M.subcommands)
  table.sort(list)
  return list
end

--- Runs `:Deskmate` with the nvim_create_user_command `opts`.
---@param opts table
function M.run(opts)
  local name, rest = (opts.args or ""):match("^%s*(%S*)%s*(.-)%s*$")
  local sub = M.subcommands[name]
  if not sub then
    local usage = vim.tbl_map(function(n)
      return "  :Deskmate " .. M.subcommands[n].help
    end, names())
    local level = name == "" and vim.log.levels.INFO or vim.log.levels.ERROR
    local head = name == "" and "deskmate: commands:" or ("deskmate: unknown subcommand %q; commands:"):format(name)
    vim.notify(head .. "\n" .. table.concat(usage, "\n"), level)
    return
  end
  sub.run(rest, opts)
end

--- Completion for `:Deskmate`.
---@param arglead string
---@param cmdline string
---@return string[]
function M.complete(arglead, cmdline)
  local rest = cmdline:match("Deskmate!?%s+(.*)$") or ""
  local words = vim.split(rest, "%s+", { trimempty = false })
  if #words <= 1 then
    return vim.tbl_filter(function(n)
      return vim.startswith(n, arglead)
    end, names())
  end
  local sub = M.subcommands[words[1]]
  if sub and sub.complete and words[1] == "switch" then
    -- A title may hold spaces: complete all that follows the subcommand, returning only
    -- what comes after the part of it already typed before the last word.
    local typed = rest:sub(#words[1] + 2)
    local before = typed:sub(1, #typed - #arglead)
    return vim.tbl_map(function(name)
      return name:sub(#before + 1)
    end, vim.tbl_filter(function(name)
      return name:sub(1, #before) == before
    end, sub.complete(typed)))
  end
  if sub and sub.complete and #words == 2 then
    return sub.complete(arglead)
  end
  return {}
end

return M
