-- History survives quitting Neovim: run with argument "ask", then again with "check".
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local phase = arg[1]

if phase == "ask" then
  H.test("ask two questions, then quit", function()
    H.ask("[[answer:Remember the number 4217.]] what should I remember?")
    H.ask("second question before quitting")
    H.contains(H.chat_text(), "I see 2 earlier messages.", "the daemon saw the first turn")
  end)
elseif phase == "check" then
  H.test(":Deskmate chat after a restart shows the stored history", function()
    vim.cmd("Deskmate chat")
    H.wait("history in the chat", function()
      return H.chat_text():find("second question before quitting", 1, true)
    end)
    local text = H.chat_text()
    H.contains(text, "## You\n\n[[answer:Remember the number 4217.]] what should I remember?", "history")
    H.contains(text, "## Deskmate\n\nRemember the number 4217.", "history")
    H.contains(text, "I see 2 earlier messages.", "history")
  end)
  H.test("the next question continues the same conversation", function()
    local r = H.ask("and now?")
    H.contains(r.answer, "I see 4 earlier messages.", "answer")
  end)
else
  error("usage: restart_spec.lua ask|check")
end

H.run()
