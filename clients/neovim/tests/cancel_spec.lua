-- Cancelling a streaming answer keeps what arrived, in the buffer and in the stored history.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local ask = require("deskmate.ask")
local chat = require("deskmate.chat")

local function start_slow_ask(question)
  local done, result, err = false, nil, nil
  ask.ask({
    root = H.root(),
    question = question,
    on_done = function(e, r)
      done, result, err = true, r, e
    end,
  })
  -- Wait for a few pieces: "t0 t1 t2 ..."
  H.wait("some streamed text", function()
    return H.chat_text():match("## Deskmate\n\nt0 t1 t2 [^\n]*$")
  end)
  return function()
    H.wait("the ask to end", function()
      return done
    end)
    return result, err
  end
end

local function stored_answer()
  local session = H.exec("deskmate.getSession", { workspaceUri = vim.uri_from_fname(H.root()) })
  return session.messages[#session.messages]
end

H.test("q in the chat buffer cancels the running ask and the partial answer stays", function()
  local finish = start_slow_ask("[[tokens:200]] [[rate:20]] count slowly")
  local buf = chat.find(H.root()).buf
  local win = vim.fn.win_findbuf(buf)[1]
  vim.api.nvim_set_current_win(win)
  vim.api.nvim_feedkeys("q", "mx", false)
  local result, err = finish()
  H.eq(nil, err, "error")
  H.eq(true, result.interrupted, "interrupted")
  local partial = result.answer
  H.truthy(vim.startswith(partial, "t0 t1 t2 "), "partial answer " .. partial)
  H.truthy(not partial:find("t199", 1, true), "stopped before the end")
  local text = H.chat_text()
  H.contains(text, "## Deskmate\n\n" .. partial .. "\n\n*(interrupted)*", "chat keeps the partial answer")
  H.truthy(chat.is_open(H.root()), "q cancelled; it did not close the chat")
  local stored = stored_answer()
  H.eq(partial, stored.content, "stored partial answer")
  H.eq("interrupted", stored.status, "stored status")
end)

H.test("<C-c> in the chat buffer cancels too; q when idle closes the chat", function()
  local finish = start_slow_ask("[[tokens:200]] [[rate:20]] count again")
  vim.api.nvim_set_current_win(vim.fn.win_findbuf(chat.find(H.root()).buf)[1])
  vim.api.nvim_feedkeys(vim.keycode("<C-c>"), "mx", false)
  local result = finish()
  H.eq(true, result.interrupted, "interrupted")
  H.truthy(vim.endswith(H.chat_text(), result.answer .. "\n\n*(interrupted)*"), "partial answer kept")
  vim.api.nvim_feedkeys("q", "mx", false)
  H.truthy(not chat.is_open(H.root()), "q closed the chat")
end)

H.test(":Deskmate cancel cancels; a reopened chat shows the interrupted answer from history", function()
  local finish = start_slow_ask("[[tokens:200]] [[rate:20]] and once more")
  vim.cmd("Deskmate cancel")
  local result = finish()
  H.eq(true, result.interrupted, "interrupted")
  vim.cmd("Deskmate chat") -- closes
  H.truthy(not chat.is_open(H.root()), "closed")
  vim.cmd("Deskmate chat") -- opens and reloads history
  H.wait("history reloaded", function()
    return H.chat_text():find("and once more", 1, true)
  end)
  H.contains(H.chat_text(), "## Deskmate\n\n" .. result.answer .. "\n\n*(interrupted)*", "reloaded history")
  -- The next question works after a cancel.
  local r = H.ask("[[answer:still here]] hello?")
  H.eq("still here", r.answer, "next answer")
end)

H.run()
