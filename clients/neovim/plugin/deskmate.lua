if vim.g.loaded_deskmate then
  return
end
vim.g.loaded_deskmate = true

if vim.fn.has("nvim-0.11") == 0 then
  vim.api.nvim_echo({ { "deskmate needs Neovim 0.11 or newer", "ErrorMsg" } }, true, {})
  return
end

for group, target in pairs({
  DeskmateTitle = "Title",
  DeskmateStatus = "Comment",
  DeskmateHint = "Comment",
  DeskmateLineage = "Special",
  DeskmateChip = "Special",
  DeskmateModel = "Type",
}) do
  vim.api.nvim_set_hl(0, group, { link = target, default = true })
end

vim.api.nvim_create_user_command("Deskmate", function(opts)
  require("deskmate.commands").run(opts)
end, {
  nargs = "*",
  range = true,
  bang = true,
  desc = "deskmate: ask, chat, sessions, new, switch, delete, fork, edit, retry, cancel, export",
  complete = function(arglead, cmdline)
    return require("deskmate.commands").complete(arglead, cmdline)
  end,
})

-- Progress from the daemon reaches the chat's winbar through the built-in LspProgress event,
-- so statusline plugins that read vim.lsp progress show it as well.
vim.api.nvim_create_autocmd("LspProgress", {
  group = vim.api.nvim_create_augroup("deskmate.progress", { clear = true }),
  callback = function(ev)
    local client = vim.lsp.get_client_by_id(ev.data.client_id)
    if not client or client.name ~= "deskmate" or not client.root_dir then
      return
    end
    local value = ev.data.params.value or {}
    local text = ""
    if value.kind ~= "end" then
      text = value.message or value.title or "answering…"
      if value.percentage then
        text = ("%s %d%%"):format(text, value.percentage)
      end
    end
    require("deskmate.chat").set_status(client.root_dir, text)
  end,
})
