-- A question typed in the chat carries code: the lines in view in the code window (shown above
-- the prompt, dropped with <C-d>), @path files (completed from the workspace), #buffers; what
-- went along is stored and shown after a reload. Also: the multi-line prompt, Retry beside a
-- failed answer, yanking and applying a code block.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))
H.setup()

local chat = require("deskmate.chat")

local function last_request()
  local requests = H.http_get_json("/_requests").requests
  return requests[#requests].messages[#requests[#requests].messages].content
end

local function input_win()
  return vim.fn.win_findbuf(chat.find(H.root()).input)[1]
end

--- Types `keys` into the chat's input, as a user would, and waits for the answer.
local function type_question(keys, answer_marker)
  vim.api.nvim_set_current_win(input_win())
  vim.api.nvim_feedkeys(vim.keycode(keys), "xt", false)
  H.wait("the answer " .. answer_marker, function()
    return not require("deskmate.ask").running(H.root()) and H.chat_text():find(answer_marker, 1, true)
  end)
end

local code_win

H.test("the code in view goes along with a question typed in the chat, shown above the prompt", function()
  local file = vim.fs.joinpath(H.root(), "calc.py")
  vim.fn.writefile({ "def add(a, b):", "    return a + b  # add_marker", "", "print(add(1, 2))" }, file)
  vim.fn.writefile({ "def helper():", "    return 42  # helper_marker" }, vim.fs.joinpath(H.root(), "util.py"))
  vim.cmd.edit(file)
  code_win = vim.api.nvim_get_current_win()
  vim.cmd("Deskmate chat")
  H.wait("the chat", function()
    return chat.is_open(H.root()) and input_win()
  end)
  H.contains(vim.wo[input_win()].winbar, "[calc.py:1-4]", "the chip above the prompt")
  -- Markdown, so treesitter (or render-markdown.nvim) highlights the answers' code blocks.
  H.eq("markdown", vim.bo[chat.find(H.root()).buf].filetype, "the chat buffer's filetype")
  vim.cmd.stopinsert()
  H.http_get_json("/_requests")
  type_question("Awhat does it do? [[answer:first seen]]<CR>", "first seen")
  local prompt = last_request()
  H.contains(prompt, "add_marker", "the visible code went to the model")
  H.contains(H.chat_text(), "*(with calc.py:1-4)*", "the chat notes the context")
  local question = H.session().messages[1]
  H.eq(vim.uri_from_fname(vim.fs.joinpath(H.root(), "calc.py")), question.context.uri, "stored context")
end)

H.test("<C-d> drops the editor's code; @path and #buffers add files, completed from the workspace", function()
  vim.api.nvim_set_current_win(input_win())
  vim.api.nvim_feedkeys(vim.keycode("<C-d>"), "xt", false) -- one chip: dropped at once
  H.contains(vim.wo[input_win()].winbar, "no code goes along", "no chip left")
  -- The completion of @ lists workspace files.
  local files = vim.tbl_map(function(item)
    return item.word
  end, require("deskmate.chat_context").complete(0, "ut"))
  H.eq({ "util.py" }, files, "completion of @ut")
  type_question("Aplain question [[answer:second seen]]<CR>", "second seen")
  H.truthy(not last_request():find("add_marker", 1, true), "the dropped code did not go")
  type_question("Ahow is @util.py used? [[answer:third seen]]<CR>", "third seen")
  local prompt = last_request()
  H.contains(prompt, "helper_marker", "the @file went to the model")
  H.truthy(not prompt:find("add_marker", 1, true), "still dropped for calc.py")
  H.contains(H.chat_text(), "*(with util.py)*", "the chat notes the file")
  -- :Deskmate add: a file for the next question, shown as a chip until it is sent.
  vim.cmd("Deskmate add util.py")
  H.contains(vim.wo[input_win()].winbar, "[util.py]", "the added file's chip")
  type_question("Aand now? [[answer:added seen]]<CR>", "added seen")
  H.contains(last_request(), "helper_marker", "the added file went to the model")
  H.truthy(not vim.wo[input_win()].winbar:find("[util.py]", 1, true), "used up by the question")
  -- #buffers: every open buffer of a workspace file, as it is in Neovim; others stay out.
  vim.api.nvim_buf_set_lines(vim.api.nvim_win_get_buf(code_win), 0, 0, false, { "# unsaved_marker" })
  local outside = vim.fn.tempname() .. ".py"
  vim.fn.writefile({ "secret = 1  # outside_marker" }, outside)
  local outside_buf = vim.fn.bufadd(outside)
  vim.fn.bufload(outside_buf)
  vim.bo[outside_buf].buflisted = true
  type_question("Acompare #buffers [[answer:fourth seen]]<CR>", "fourth seen")
  H.contains(last_request(), "unsaved_marker", "the open buffer, unsaved change included")
  H.truthy(not last_request():find("outside_marker", 1, true), "a buffer outside the workspace did not go")
  H.eq(1, #H.notified("not sent: " .. vim.fn.fnamemodify(outside, ":~"), vim.log.levels.INFO), "the user is told")
end)

H.test("what went along is shown again after a reload; a multi-line question keeps its lines", function()
  require("deskmate.ask").load(H.root())
  H.wait("the reload", function()
    return H.chat_text():find("*(with util.py)*", 1, true) and H.chat_text():find("*(with calc.py:1-4)*", 1, true)
  end)
  type_question("Afirst line<C-j>second line [[answer:multi seen]]<CR>", "multi seen")
  local messages = H.session().messages
  H.eq("first line\nsecond line [[answer:multi seen]]", messages[#messages - 1].content, "two lines")
end)

H.test("a failed answer says why with Retry beside it; r asks again", function()
  type_question("Aflaky [[fail-once:500]]<CR>", "(failed:")
  H.contains(H.chat_text(), "— press `r` here to retry", "the retry hint beside the reason")
  require("deskmate.ask").load(H.root())
  H.wait("the reload", function()
    return H.chat_text():find("press `r` here to retry", 1, true)
  end)
  local view = chat.find(H.root())
  local win = vim.fn.win_findbuf(view.buf)[1]
  vim.api.nvim_set_current_win(win)
  vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(view.buf), 0 })
  vim.api.nvim_feedkeys("r", "xt", false)
  H.wait("the retried answer", function()
    return not require("deskmate.ask").running(H.root()) and H.chat_text():find("You asked: flaky", 1, true)
  end)
  H.truthy(not H.chat_text():find("(failed:", 1, true), "the fork holds the good answer")
end)

H.test("a new session whose first answer failed is named in the winbar all the same", function()
  local before = chat.find(H.root()).session_id
  vim.cmd("Deskmate new")
  H.wait("the new session in the chat", function()
    local view = chat.find(H.root())
    return view and view.session_id and view.session_id ~= before
  end)
  type_question("Abroken start [[fail-once:500]]<CR>", "(failed:")
  local view = chat.find(H.root())
  H.wait("the title in the winbar", function()
    return view.title == "broken start [[fail-once:500]]"
  end)
  H.contains(vim.wo[vim.fn.win_findbuf(view.buf)[1]].winbar, "broken start", "the winbar names it")
end)

H.test("gy yanks the code block under the cursor; ga applies it below the code window's cursor", function()
  local answer = "Use this:\n\n```python\ndef double(x):\n    return 2 * x\n```\n\nDone."
  type_question("Agive code [[answer:" .. answer .. "]]<CR>", "Done.")
  local view = chat.find(H.root())
  local win = vim.fn.win_findbuf(view.buf)[1]
  vim.api.nvim_set_current_win(win)
  local lines = vim.api.nvim_buf_get_lines(view.buf, 0, -1, false)
  local row
  for i = #lines, 1, -1 do
    if lines[i]:find("return 2 * x", 1, true) then
      row = i
      break
    end
  end
  vim.api.nvim_win_set_cursor(win, { row, 0 })
  vim.api.nvim_feedkeys("gy", "xt", false)
  H.eq("def double(x):\n    return 2 * x\n", vim.fn.getreg('"'), "the yanked block")
  vim.api.nvim_win_set_cursor(code_win, { 1, 0 })
  vim.api.nvim_set_current_win(win)
  vim.api.nvim_feedkeys("ga", "xt", false)
  local code = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(code_win), 0, 3, false)
  H.eq({ "# unsaved_marker", "def double(x):", "    return 2 * x" }, code, "applied below line 1")
end)

H.run()
