-- The model picker: :Deskmate model lists the server's models (the current one marked) and the
-- choice is used by this workspace's asks and shown in the chat's winbar; :Deskmate model {name}
-- with <Tab> completion.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local chat = require("deskmate.chat")

local function winbar()
  return vim.wo[vim.fn.win_findbuf(chat.find(H.root()).buf)[1]].winbar
end

local function last_model()
  local requests = H.http_get_json("/_requests").requests
  return requests[#requests].model
end

H.test("the chat's winbar names the model; :Deskmate model picks another for this workspace", function()
  H.ask("[[answer:one]] first")
  H.contains(winbar(), "test-model", "the model setting in the winbar")
  local calls = H.stub_select(function(items)
    return items[2]
  end)
  vim.cmd("Deskmate model")
  H.wait("the choice", function()
    return winbar():find("qwen2.5-coder-7b", 1, true)
  end)
  H.eq({ "● test-model", "  qwen2.5-coder-7b" }, calls[1].shown, "the server's models, the current one marked")
  H.ask("[[answer:two]] second")
  H.eq("qwen2.5-coder-7b", last_model(), "the model asked")
end)

H.test(":Deskmate model {name} completes the server's models and switches back", function()
  H.wait("models for completion", function()
    return vim.list_contains(vim.fn.getcompletion("Deskmate model ", "cmdline"), "test-model")
  end)
  H.eq({ "qwen2.5-coder-7b" }, vim.fn.getcompletion("Deskmate model qw", "cmdline"), "completion")
  vim.cmd("Deskmate model test-model")
  H.wait("the winbar", function()
    return winbar():find("test-model", 1, true) and not winbar():find("qwen", 1, true)
  end)
  H.ask("[[answer:three]] third")
  H.eq("test-model", last_model(), "the model asked")
end)

H.run()
