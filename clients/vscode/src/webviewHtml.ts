// The chat view's HTML page. Free of `vscode` so the real page (with its real
// Content-Security-Policy) is what the Chromium tests load.

import { randomBytes } from 'node:crypto';

export interface PageResources {
  /** `webview.cspSource`: the only origin scripts and styles may come from. */
  cspSource: string;
  scriptUri: string;
  styleUri: string;
  nonce?: string;
}

/** A fresh nonce for each page: 128 random bits, base64. */
export function makeNonce(): string {
  return randomBytes(16).toString('base64');
}

/**
 * Nothing runs but our one script (by nonce); styles come only from our own
 * stylesheet (so model output cannot style itself); images only from data:
 * URLs and our own files; no connections, frames, fonts or forms anywhere else.
 */
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${cspSource}`,
    `img-src ${cspSource} data:`,
    `font-src ${cspSource}`,
    "connect-src 'none'",
    "frame-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
}

export function chatPageHtml(resources: PageResources): string {
  const nonce = resources.nonce ?? makeNonce();
  const attr = escapeAttribute;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${attr(contentSecurityPolicy(resources.cspSource, nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${attr(resources.styleUri)}">
<title>deskmate</title>
</head>
<body>
<header class="toolbar" aria-label="Session">
  <label class="visually-hidden" for="session-select">Session</label>
  <select id="session-select" title="Switch session"><option value="">Loading…</option></select>
  <button id="new-session" type="button" title="Start a new session">New</button>
  <button id="delete-session" type="button" title="Move this session to the trash (Undo in the notification)">Delete</button>
  <button id="model" type="button" class="secondary model" title="The model this workspace asks: choose another">model</button>
</header>
<div id="lineage" class="lineage" hidden>
  <span id="lineage-text"></span>
  <button id="lineage-source" type="button" class="link" title="Go to the session this one was forked from" hidden></button>
</div>
<div id="summary-banner" class="summary-banner" role="note" hidden>
  <span id="summary-text"></span>
  <button id="summary-show" type="button" class="link" aria-expanded="false" title="Show the summary sent in place of these messages">Show</button>
  <button id="summary-undo" type="button" class="link" title="Drop the summary: the next question sends these messages again">Undo</button>
  <div id="summary-body" class="summary-body" hidden></div>
</div>
<div id="status" class="status" role="status" hidden>
  <span id="status-text"></span>
  <button id="restart" type="button" class="secondary" hidden>Retry</button>
</div>
<main id="transcript" class="transcript" role="log" aria-live="polite" aria-label="Conversation" tabindex="0"></main>
<div id="prompt-form" class="prompt">
  <div class="context-bar">
    <div id="context-chips" class="chips" aria-label="Sent along with the question"></div>
    <button id="add-context" type="button" class="secondary add-context" title="Add workspace files to send along (or type @ in the question)">+ add context</button>
  </div>
  <label class="visually-hidden" for="prompt">Ask deskmate</label>
  <ul id="file-suggestions" class="suggestions" role="listbox" aria-label="Workspace files" hidden></ul>
  <textarea id="prompt" rows="3" placeholder="Ask about this project; @ adds a file (Enter to send, Shift+Enter for a new line)"></textarea>
  <div class="prompt-buttons">
    <button id="send" type="button">Send</button>
    <button id="stop" type="button" class="secondary" hidden title="Stop the answer (Escape)">Stop</button>
  </div>
</div>
<script nonce="${attr(nonce)}" src="${attr(resources.scriptUri)}"></script>
</body>
</html>`;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
