-- Working without setup(), no forced keymaps, the chat prompt, following the answer, help tags.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(debug.getinfo(1, "S").source:sub(2)), "helpers.lua"))

-- No setup() call: the daemon gets its model from the environment it inherits.
vim.env.DESKMATE_BASE_URL = H.env.base_url
vim.env.DESKMATE_MODEL = "test-model"
vim.env.DESKMATE_DATA_DIR = H.env.data_dir
H.load()

local chat = require("deskmate.chat")

local function deskmate_maps()
  local found = {}
  for _, mode in ipairs({ "n", "v", "x", "s", "o", "i", "c", "t" }) do
    for _, map in ipairs(vim.api.nvim_get_keymap(mode)) do
      local text = ((map.rhs or "") .. " " .. (map.desc or "")):lower()
      if text:find("deskmate", 1, true) then
        table.insert(found, mode .. " " .. map.lhs)
      end
    end
  end
  return found
end

H.test("without setup(), :Deskmate ask works with the defaults and maps no keys", function()
  H.eq({}, deskmate_maps(), "global keymaps")
  vim.cmd("Deskmate ask [[answer:defaults are fine]] hi")
  H.wait("the answer", function()
    return H.chat_text():find("defaults are fine", 1, true) and not require("deskmate.ask").running(H.root())
  end)
  H.eq({}, deskmate_maps(), "global keymaps after use")
  H.eq({}, H.notified("", vim.log.levels.WARN), "no warnings")
end)

H.test("keymaps are created only when named in setup(), and removed again", function()
  require("deskmate").setup({ keymaps = { chat = "<leader>zc", ask = "<leader>za" } })
  H.eq("<Cmd>Deskmate chat<CR>", vim.fn.maparg("<leader>zc", "n"), "chat map")
  H.eq("<Cmd>Deskmate ask<CR>", vim.fn.maparg("<leader>za", "n"), "ask map (normal)")
  H.eq(":Deskmate ask<CR>", vim.fn.maparg("<leader>za", "x"), "ask map (visual)")
  require("deskmate").setup({})
  H.eq({}, deskmate_maps(), "no maps after setup({})")
end)

H.test("a question typed in the chat's prompt is asked; the prompt is cleared", function()
  local root = H.root()
  H.truthy(chat.is_open(root), "chat open")
  local view = chat.find(root)
  vim.api.nvim_set_current_win(vim.fn.win_findbuf(view.input)[1])
  vim.api.nvim_feedkeys(vim.keycode("Afrom the prompt [[answer:prompt works]]<CR>"), "xt", false)
  H.wait("the answer", function()
    return H.chat_text():find("prompt works", 1, true) and not require("deskmate.ask").running(root)
  end)
  H.contains(H.chat_text(), "## You\n\nfrom the prompt [[answer:prompt works]]\n\n## Deskmate\n\nprompt works")
  H.wait("the prompt cleared", function()
    return #vim.api.nvim_buf_get_lines(view.input, 0, -1, false) == 1
  end)
  -- A half-typed question does not count as an unsaved change (it would block :qa).
  vim.api.nvim_feedkeys(vim.keycode("Anot sent yet"), "xt", false)
  vim.cmd.stopinsert()
  H.wait("InsertLeave", function()
    return vim.fn.mode() == "n"
  end)
  H.eq(false, vim.bo[view.input].modified, "prompt modified")
  -- What :qa checks (bufIsChanged, the "changed" field): a nofile input never counts.
  H.eq({}, vim.tbl_filter(function(info)
    return info.changed == 1
  end, vim.fn.getbufinfo()), "changed buffers")
end)

H.test("the view follows the answer unless the user scrolled away; only the end is rewritten", function()
  local root = H.root()
  local view = chat.find(root)
  local win = vim.fn.win_findbuf(view.buf)[1]
  local lines = {}
  for i = 1, 120 do
    lines[i] = "line " .. i
  end
  local answer = table.concat(lines, "\n")
  local start_line = vim.api.nvim_buf_line_count(view.buf)
  local first_changed = math.huge
  vim.api.nvim_buf_attach(view.buf, false, {
    on_lines = function(_, _, _, first)
      first_changed = math.min(first_changed, first)
    end,
  })
  local finished = false
  require("deskmate.ask").ask({
    root = root,
    question = "[[rate:150]] [[answer:" .. answer .. "]]",
    on_done = function()
      finished = true
    end,
  })
  H.wait("30 lines", function()
    return H.chat_text():find("line 30\n", 1, true)
  end)
  -- Not the current window, end in view: it follows.
  H.truthy(vim.api.nvim_get_current_win() ~= win, "chat is not the current window")
  H.eq(vim.api.nvim_buf_line_count(view.buf), vim.api.nvim_win_get_cursor(win)[1], "following")
  -- The user goes to the chat and scrolls to the top: it stays there.
  vim.api.nvim_set_current_win(win)
  vim.cmd("normal! gg")
  H.wait("60 lines", function()
    return H.chat_text():find("line 60\n", 1, true)
  end)
  H.eq(1, vim.api.nvim_win_get_cursor(win)[1], "cursor stays where the user put it")
  H.eq(1, vim.fn.line("w0", win), "view stays at the top")
  -- G: following again.
  vim.cmd("normal! G")
  H.wait("90 lines", function()
    return H.chat_text():find("line 90\n", 1, true)
  end)
  H.eq(vim.api.nvim_buf_line_count(view.buf), vim.api.nvim_win_get_cursor(win)[1], "following again")
  H.wait("the end", function()
    return finished
  end)
  H.truthy(vim.endswith(H.chat_text(), answer), "whole answer")
  -- Streaming appended at the end; earlier lines were never rewritten (no flicker).
  H.truthy(first_changed >= start_line - 1, ("first changed line %d >= %d"):format(first_changed, start_line - 1))
end)

H.test("the workspace root is the nearest folder with a marker", function()
  local ws = H.root()
  vim.fn.mkdir(ws .. "/src/deep", "p")
  vim.fn.mkdir(ws .. "/sub/.deskmate", "p")
  vim.fn.mkdir(ws .. "/sub/pkg", "p")
  vim.cmd.edit(ws .. "/src/deep/a.lua")
  H.eq(ws, require("deskmate.workspace").root(0), "root of a nested file")
  vim.cmd.edit(ws .. "/sub/pkg/b.lua")
  H.eq(ws .. "/sub", require("deskmate.workspace").root(0), "root with a nearer .deskmate")
  vim.cmd.enew()
  H.eq(ws, require("deskmate.workspace").root(0), "an unnamed buffer uses the current directory")
end)

H.test("one daemon per workspace root, reused by every command", function()
  local ws = H.root()
  local function roots()
    local list = vim.tbl_map(function(c)
      return c.root_dir
    end, vim.lsp.get_clients({ name = "deskmate" }))
    table.sort(list)
    return list
  end
  H.eq({ ws }, roots(), "one daemon so far")
  vim.cmd.edit(ws .. "/sub/pkg/b.lua")
  local r = H.ask("[[answer:from sub]] hi", { root = ws .. "/sub" })
  H.eq("from sub", r.answer, "answer in the other root")
  H.eq({ ws, ws .. "/sub" }, roots(), "a second daemon for the second root")
  vim.cmd.edit(ws .. "/src/deep/a.lua")
  H.ask("[[answer:again]] hi")
  H.exec("deskmate.listSessions", {})
  H.eq({ ws, ws .. "/sub" }, roots(), "reused")
end)

H.test("doc/deskmate.txt builds help tags for every command", function()
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p")
  vim.fn.writefile(vim.fn.readfile(H.plugin_dir .. "/doc/deskmate.txt"), dir .. "/deskmate.txt")
  vim.cmd.helptags(dir) -- fails on duplicate tags
  local tags = table.concat(vim.fn.readfile(dir .. "/tags"), "\n")
  for _, tag in ipairs({
    "deskmate",
    "deskmate-setup",
    "deskmate.setup()",
    ":Deskmate",
    ":Deskmate-ask",
    ":Deskmate-chat",
    ":Deskmate-add",
    ":Deskmate-model",
    "deskmate-chat-context",
    ":Deskmate-sessions",
    ":Deskmate-new",
    ":Deskmate-delete",
    ":Deskmate-restore",
    ":Deskmate-trash",
    "deskmate-trash",
    ":Deskmate-remember",
    ":Deskmate-memories",
    ":Deskmate-forget",
    "deskmate-memory",
    ":Deskmate-cancel",
    ":Deskmate-export",
    "deskmate-keymaps",
    "deskmate-health",
    "deskmate-security",
  }) do
    H.truthy(tags:find("\n" .. vim.pesc(tag) .. "\tdeskmate.txt") or tags:find("^" .. vim.pesc(tag) .. "\t"), "tag " .. tag)
  end
end)

H.run()
