-- Compaction and pins from Neovim, as a user works: :Deskmate pin on a message of the chat,
-- :Deskmate compact with instructions (the summary folded at the top of the chat), then
-- :Deskmate uncompact. What the daemon stored and what the model was sent are checked.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local chat = require("deskmate.chat")

local function chat_win()
  return vim.fn.win_findbuf(chat.find(H.root()).buf)[1]
end

local function last_answer_request()
  local requests = H.http_get_json("/_requests").requests
  for i = #requests, 1, -1 do
    local system = requests[i].messages[1].content
    if not system:find("condense the start of a conversation", 1, true) then
      return requests[i]
    end
  end
end

local function summary_request()
  local requests = H.http_get_json("/_requests").requests
  for i = #requests, 1, -1 do
    if requests[i].messages[1].content:find("condense the start of a conversation", 1, true) then
      return requests[i]
    end
  end
end

local rule_id

H.test(":Deskmate pin on a question in the chat pins that message", function()
  H.ask("RULE: tabs, never spaces")
  H.ask("second question")
  H.ask("third question")
  H.cursor_on("RULE: tabs")
  vim.cmd("Deskmate pin")
  H.wait("the message pinned", function()
    return chat.find(H.root()).messages[1].pinned
  end)
  local s = H.session()
  rule_id = s.messages[1].id
  H.eq({ rule_id }, s.pinnedMessages, "the daemon's pins")
  H.eq(false, s.pinned, "the session itself is not pinned")
  H.contains(H.chat_text(), "## You · pinned", "the chat marks it")
end)

H.test(":Deskmate compact summarizes, and the summary is folded at the top of the chat", function()
  vim.cmd("Deskmate compact keep the rules")
  H.wait("the summary in the chat", function()
    return chat.find(H.root()).summary ~= nil
  end)
  local s = H.session()
  H.eq(1, #s.summaries, "one summary stored")
  H.eq("keep the rules", s.summaries[1].instructions, "its instructions")
  H.eq(6, #s.messages, "every message kept")
  local first = vim.api.nvim_buf_get_lines(chat.find(H.root()).buf, 0, 1, false)[1]
  H.eq("## Summary of 4 earlier messages", first, "the summary block")
  H.eq(1, vim.api.nvim_win_call(chat_win(), function()
    return vim.fn.foldclosed(1)
  end), "the summary is folded")
  H.contains(vim.wo[chat_win()].winbar, "4 summarized", "the winbar says so")
  local request = summary_request()
  H.contains(request.messages[1].content, "keep the rules", "instructions sent to the summarizer")
  H.truthy(not request.messages[2].content:find("User: RULE", 1, true), "the pinned rule is not summarized")
  H.ask("next question")
  local sent = last_answer_request().messages
  H.contains(sent[1].content, s.summaries[1].summary, "the summary sent in the system message")
  H.eq("RULE: tabs, never spaces", sent[2].content, "the pinned rule sent as it is")
end)

H.test(":Deskmate uncompact drops the summary and the chat shows no fold", function()
  vim.cmd("Deskmate uncompact")
  H.wait("the summary gone from the chat", function()
    return chat.find(H.root()).summary == nil
  end)
  H.eq({}, H.session().summaries, "no summary stored")
  H.truthy(not H.chat_text():find("## Summary of", 1, true), "no summary block")
  H.cursor_on("RULE: tabs")
  vim.cmd("Deskmate! pin")
  H.wait("the message unpinned", function()
    return not chat.find(H.root()).messages[1].pinned
  end)
  H.eq({}, H.session().pinnedMessages, "no pins")
end)

H.run()
