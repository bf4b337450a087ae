-- Project memory from Neovim: :Deskmate remember {text}, :Deskmate memories (forget one from the
-- picker), :Deskmate forget {id}; the daemon sends the memory and AGENTS.md with every question.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local function memories()
  return H.exec("deskmate.listMemories", { workspaceUri = vim.uri_from_fname(H.root()) })
end

local function texts(result)
  return vim.tbl_map(function(m)
    return m.text
  end, result.memories)
end

--- The system message sent with `question` (not an automatic title's request).
local function system_for(question)
  for _, request in ipairs(H.http_get_json("/_requests").requests) do
    local messages = request.messages
    if messages[#messages].content == question and not messages[1].content:find("Name the conversation", 1, true) then
      return messages[1].role == "system" and messages[1].content or ""
    end
  end
  error("no request asked " .. question)
end

H.test(":Deskmate remember keeps a fact that every question of the project is sent", function()
  vim.fn.writefile({ "Always name the file you change." }, vim.fs.joinpath(H.root(), "AGENTS.md"))
  vim.cmd("Deskmate remember The API lives under /v2")
  H.wait("the memory reported", function()
    return #H.notified("deskmate: remembered", vim.log.levels.INFO) == 1
  end)
  H.contains(H.notified("deskmate: remembered")[1].msg, "1 memory", "the count")
  H.eq({ "The API lives under /v2" }, texts(memories()), "stored in the daemon")
  H.ask("where is the API?")
  local system = system_for("where is the API?")
  H.contains(system, "- The API lives under /v2", "the memory was sent")
  H.contains(system, "Always name the file you change.", "AGENTS.md was sent")
  vim.cmd("Deskmate new")
  H.wait("the new session", function()
    return #H.notified("new session", vim.log.levels.INFO) >= 1
  end)
  H.ask("and in a new session?")
  H.contains(system_for("and in a new session?"), "- The API lives under /v2", "sent in the new session too")
end)

H.test(":Deskmate remember without text asks for it", function()
  local asked
  vim.ui.input = function(opts, on_confirm)
    asked = opts.prompt
    vim.schedule(function()
      on_confirm("Tests run with pytest")
    end)
  end
  vim.cmd("Deskmate remember")
  H.wait("the second memory", function()
    return #memories().memories == 2
  end)
  H.contains(asked, "Remember", "the prompt")
end)

H.test(":Deskmate memories lists them and the files read; Forget it removes one", function()
  local calls = H.stub_select(function(items, opts)
    if opts.kind == "deskmate.memories" then
      return items[1]
    end
    return "Forget it"
  end)
  vim.cmd("Deskmate memories")
  H.wait("the forget reported", function()
    return #H.notified("deskmate: forgotten", vim.log.levels.INFO) == 1
  end)
  H.eq("deskmate.memories", calls[1].kind, "the picker")
  H.eq(2, #calls[1].items, "both memories listed")
  H.contains(calls[1].shown[1], "The API lives under /v2", "the first memory's line")
  H.contains(calls[1].prompt, "AGENTS.md", "the instruction file named")
  H.eq("deskmate.memory_action", calls[2].kind, "the action asked")
  H.eq({ "Tests run with pytest" }, texts(memories()), "the first was forgotten")
  H.ask("now?")
  H.truthy(not system_for("now?"):find("/v2", 1, true), "a forgotten memory is not sent")
end)

H.test(":Deskmate forget {id} forgets; its id completes; an unknown id is an error", function()
  local id = memories().memories[1].memoryId
  require("deskmate.memory").ids(H.root())
  H.wait("the ids known for completion", function()
    return vim.list_contains(require("deskmate.commands").complete("", "Deskmate forget "), id)
  end)
  vim.cmd("Deskmate forget " .. id)
  H.wait("the second forget reported", function()
    return #H.notified("deskmate: forgotten", vim.log.levels.INFO) == 2
  end)
  H.eq({}, memories().memories, "none left")
  vim.cmd("Deskmate forget " .. id)
  H.wait("the error", function()
    return #H.notified("no memory with id", vim.log.levels.ERROR) == 1
  end)
  H.stub_select(function()
    error("no picker expected without memories")
  end)
  vim.cmd("Deskmate memories")
  H.wait("no memories said", function()
    return #H.notified("no memories in this project yet", vim.log.levels.INFO) == 1
  end)
end)

H.run()
