-- Masking secrets in what the plugin shows (:checkhealth deskmate). The rules mirror the
-- daemon's redact() (server/deskmate/memory/urls.py) and the VS Code extension's redact.ts.
local M = {}

local MASK = "***"
local SECRET_WORDS = { "password", "secret", "token", "key" }

local function secret_name(name)
  name = name:lower()
  for _, word in ipairs(SECRET_WORDS) do
    if name:find(word, 1, true) then
      return true
    end
  end
  return false
end

--- `url` with its password, and the values of query parameters whose name contains
--- password, secret, token or key, replaced by `***`. Text without `://` is returned as is.
---@param url string
---@return string
function M.url(url)
  local scheme, rest = url:match("^(.-)://(.*)$")
  if not scheme then
    return url
  end
  -- Everything up to the LAST '@' is the login, so a password holding an unencoded
  -- '@', '/', '?' or '#' cannot end it early and leave the rest in view.
  local shown_login = ""
  local login, after = rest:match("^(.*)@(.*)$")
  if login then
    local user = login:match("^([^:]*):")
    shown_login = user and (user .. ":" .. MASK .. "@") or (login .. "@")
    rest = after
  end
  local location, query = rest:match("^([^?]*)%?(.*)$")
  if location then
    local params = vim.split(query, "&", { plain = true })
    for i, param in ipairs(params) do
      local name = param:match("^([^=]*)=")
      if name and secret_name(name) then
        params[i] = name .. "=" .. MASK
      end
    end
    rest = location .. "?" .. table.concat(params, "&")
  end
  return scheme .. "://" .. shown_login .. rest
end

--- `text` with every URL in it (up to white space) redacted.
---@param text string
---@return string
function M.text(text)
  return (text:gsub("%a[%w+.-]*://%S*", M.url))
end

return M
