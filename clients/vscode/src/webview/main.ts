// The chat view's page. It only shows what the extension sends and posts back
// what the user does; the extension talks to the daemon.

import type { ChatEntry, ContextChip, DaemonState, FromWebview, SessionChoice, SummaryBanner, ToWebview } from '../messages';
import { codeOf, renderMarkdown } from './markdown';

interface VsCodeApi {
  postMessage(message: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const post = (message: FromWebview) => vscode.postMessage(message);

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const transcript = $<HTMLElement>('transcript');
const prompt = $<HTMLTextAreaElement>('prompt');
const sendButton = $<HTMLButtonElement>('send');
const stopButton = $<HTMLButtonElement>('stop');
const sessionSelect = $<HTMLSelectElement>('session-select');
const newButton = $<HTMLButtonElement>('new-session');
const deleteButton = $<HTMLButtonElement>('delete-session');
const statusBox = $<HTMLElement>('status');
const statusText = $<HTMLElement>('status-text');
const restartButton = $<HTMLButtonElement>('restart');
const lineageBox = $<HTMLElement>('lineage');
const lineageText = $<HTMLElement>('lineage-text');
const lineageSource = $<HTMLButtonElement>('lineage-source');
const chipsBox = $<HTMLElement>('context-chips');
const modelButton = $<HTMLButtonElement>('model');
const addContextButton = $<HTMLButtonElement>('add-context');
const suggestionsBox = $<HTMLUListElement>('file-suggestions');
const summaryBanner = $<HTMLElement>('summary-banner');
const summaryText = $<HTMLElement>('summary-text');
const summaryShow = $<HTMLButtonElement>('summary-show');
const summaryUndo = $<HTMLButtonElement>('summary-undo');
const summaryBody = $<HTMLElement>('summary-body');

/** The answer being streamed: its text so far and the element it renders into. */
interface Streaming {
  askId: string;
  text: string;
  body: HTMLElement;
  entry: HTMLElement;
  renderTimer?: number;
}

let sessionId: string | null = null;
let sessions: SessionChoice[] = [];
let stored = true;
let streaming: Streaming | undefined;
let daemonState: DaemonState = 'starting';
let summary: SummaryBanner | null = null;

// Streamed text is re-rendered at most this often: Markdown must be parsed
// whole (a fence opened early changes everything after it).
const RENDER_INTERVAL_MS = 40;

// ---- the transcript ------------------------------------------------------------

function isNearBottom(): boolean {
  return transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
}

function keepScrolled(wasNearBottom: boolean): void {
  if (wasNearBottom) transcript.scrollTop = transcript.scrollHeight;
}

function entryElement(role: ChatEntry['role'], pinned = false): { entry: HTMLElement; body: HTMLElement } {
  const entry = document.createElement('article');
  entry.className = `message ${role}`;
  const who = document.createElement('div');
  who.className = 'message-role';
  who.textContent = role === 'user' ? 'You' : 'deskmate';
  if (pinned) {
    entry.classList.add('pinned');
    const mark = document.createElement('span');
    mark.className = 'pin-mark';
    mark.textContent = ' · pinned';
    mark.title = 'Always sent to the model, never summarized';
    who.append(mark);
  }
  const body = document.createElement('div');
  body.className = 'message-body';
  entry.append(who, body);
  return { entry, body };
}

function fillBody(body: HTMLElement, role: ChatEntry['role'], content: string): void {
  if (role === 'user') {
    body.textContent = content; // questions are shown as typed
  } else {
    body.replaceChildren(renderMarkdown(content));
  }
}

function markInterrupted(entry: HTMLElement, note: string): void {
  entry.classList.add('interrupted');
  const mark = document.createElement('div');
  mark.className = 'message-note';
  mark.textContent = note;
  entry.append(mark);
}

/** A failed answer: its reason in the entry, the same live (askFailed) and after a reload,
 * with Retry beside it once the answer is stored (it has an id). */
function markFailed(entry: HTMLElement, reason: string, id?: string): void {
  entry.classList.add('interrupted', 'failed');
  showError(reason, entry);
  if (!id || !stored) return;
  const retry = document.createElement('button');
  retry.type = 'button';
  retry.className = 'retry-failed';
  retry.textContent = 'Retry';
  retry.title = 'Ask this question again (in a fork; this failed answer is kept)';
  retry.addEventListener('click', () => {
    if (!streaming) post({ type: 'retry', messageId: id });
  });
  entry.querySelector<HTMLElement>(':scope > .error')?.after(retry);
}

/** The stored messages shown, by id: what the message actions act on. */
const shownEntries = new Map<string, ChatEntry>();

function actionButton(action: string, label: string, title: string): HTMLButtonElement {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'message-action secondary';
  button.dataset.messageAction = action;
  button.textContent = label;
  button.title = title;
  return button;
}

/** Copy, Fork from here, and Edit (questions) or Retry (answers), for a stored message. */
function addActions(entry: HTMLElement, item: ChatEntry): void {
  if (!item.id || !stored) return;
  entry.dataset.id = item.id;
  shownEntries.set(item.id, item);
  const bar = document.createElement('div');
  bar.className = 'message-actions';
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', item.role === 'user' ? 'Question actions' : 'Answer actions');
  bar.append(
    actionButton('copy', 'Copy', 'Copy this message'),
    actionButton('fork', 'Fork from here', 'A new session holding the conversation up to this message'),
    item.pinned
      ? actionButton('unpin', 'Unpin', 'Stop sending this message with every question')
      : actionButton('pin', 'Pin', 'Always send this message to the model; it is never summarized'),
    item.role === 'user'
      ? actionButton('edit', 'Edit', 'Edit this question and resend it in a fork')
      : actionButton('retry', 'Retry', 'Ask this question again in a fork; this answer is kept'),
  );
  entry.append(bar);
}

/** What went along with a question, under it: "with calc.py:8-12 · util.py". */
function contextLine(labels: string[] | undefined): HTMLElement | undefined {
  if (!labels?.length) return undefined;
  const line = document.createElement('div');
  line.className = 'context-used';
  const intro = document.createElement('span');
  intro.textContent = 'with';
  line.append(intro);
  for (const label of labels) {
    const chip = document.createElement('span');
    chip.className = 'chip';
    chip.textContent = label;
    line.append(chip);
  }
  return line;
}

function appendEntry(item: ChatEntry): HTMLElement {
  const { entry, body } = entryElement(item.role, item.pinned);
  fillBody(body, item.role, item.content);
  const used = contextLine(item.context);
  if (used) entry.append(used);
  if (item.role === 'assistant' && item.error) markFailed(entry, item.error, item.id);
  else if (item.role === 'assistant' && item.status === 'interrupted') markInterrupted(entry, 'Answer interrupted.');
  addActions(entry, item);
  transcript.append(entry);
  return entry;
}

/** Removes the message `id` and everything after it: an edit or retry continues from there. */
function cutFrom(id: string): void {
  const from = Array.from(transcript.querySelectorAll<HTMLElement>(':scope > .message')).find((e) => e.dataset.id === id);
  if (!from) return;
  while (from.nextSibling) from.nextSibling.remove();
  from.remove();
}

// ---- editing a question in place ----------------------------------------------------

function startEditing(entry: HTMLElement): void {
  const item = entry.dataset.id ? shownEntries.get(entry.dataset.id) : undefined;
  if (!item || streaming || entry.classList.contains('editing')) return;
  const body = entry.querySelector<HTMLElement>('.message-body');
  if (!body) return;
  entry.classList.add('editing');
  const box = document.createElement('textarea');
  box.className = 'edit-box';
  box.rows = Math.min(8, Math.max(2, item.content.split('\n').length));
  box.value = item.content;
  box.setAttribute('aria-label', 'Edit the question (Enter resends it in a fork, Escape cancels)');
  const hint = document.createElement('div');
  hint.className = 'message-note edit-hint';
  hint.textContent = 'Enter resends it in a fork (this conversation is kept); Escape cancels.';
  body.replaceChildren(box, hint);
  box.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.stopPropagation();
      stopEditing(entry, item);
    } else if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      const question = box.value.trim();
      if (!question || streaming || !item.id) return;
      post({ type: 'edit', messageId: item.id, question });
    }
  });
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

function stopEditing(entry: HTMLElement, item: ChatEntry): void {
  entry.classList.remove('editing');
  const body = entry.querySelector<HTMLElement>('.message-body');
  if (body) fillBody(body, item.role, item.content);
  entry.querySelector<HTMLButtonElement>('button[data-message-action="edit"]')?.focus();
}

// ---- where the session came from ---------------------------------------------------------

function showLineage(message: Extract<ToWebview, { type: 'session' }>): void {
  const from = message.forkedFrom;
  const forks = message.forkCount ?? 0;
  const forkNote = forks > 0 ? `${forks === 1 ? '1 fork' : `${forks} forks`} made from this session` : '';
  if (from) {
    lineageText.textContent = 'Forked from';
    lineageSource.textContent = from.title || from.sessionId;
    lineageSource.dataset.sessionId = from.sessionId;
    lineageSource.hidden = false;
    lineageBox.title = forkNote;
  } else {
    lineageText.textContent = forkNote ? `${forkNote}` : '';
    lineageSource.hidden = true;
    delete lineageSource.dataset.sessionId;
    lineageBox.title = '';
  }
  lineageBox.hidden = !from && !forkNote;
}

// ---- the summary sent in place of earlier messages --------------------------------

/** "N earlier messages summarized — Show / Undo"; the messages it covers stay, marked. */
function showSummary(banner: SummaryBanner | null | undefined): void {
  summary = banner ?? null;
  summaryBanner.hidden = summary === null;
  summaryBody.hidden = true;
  summaryShow.textContent = 'Show';
  summaryShow.setAttribute('aria-expanded', 'false');
  if (!summary) return;
  const count = summary.messageCount;
  summaryText.textContent = `${count} earlier ${count === 1 ? 'message' : 'messages'} summarized — `;
  summaryBody.replaceChildren(renderMarkdown(summary.text));
  let covered = true;
  for (const entry of Array.from(transcript.querySelectorAll<HTMLElement>(':scope > .message'))) {
    if (covered) entry.classList.add('summarized');
    if (entry.dataset.id === summary.toMessageId) covered = false;
  }
}

function showEmpty(): void {
  const empty = document.createElement('p');
  empty.className = 'empty';
  empty.textContent = stored
    ? 'No messages yet. Ask a question about this project below.'
    : 'No folder is open: this conversation will not be stored.';
  transcript.append(empty);
}

function showError(message: string, entry?: HTMLElement): void {
  const wasNearBottom = isNearBottom();
  const box = document.createElement('div');
  box.className = 'error';
  box.setAttribute('role', 'alert');
  box.textContent = message;
  (entry ?? transcript).append(box);
  keepScrolled(wasNearBottom || !entry);
}

function clearTransientErrors(): void {
  for (const box of Array.from(transcript.querySelectorAll(':scope > .error'))) box.remove();
}

// ---- streaming --------------------------------------------------------------------

function startAnswer(askId: string, question: string, replaceFrom?: string, context?: string[]): void {
  finishStreaming();
  if (replaceFrom) cutFrom(replaceFrom);
  transcript.querySelector(':scope > .empty')?.remove();
  clearTransientErrors();
  appendEntry({ role: 'user', content: question, context });
  const { entry, body } = entryElement('assistant');
  entry.classList.add('streaming');
  entry.setAttribute('aria-busy', 'true');
  transcript.append(entry);
  streaming = { askId, text: '', body, entry };
  setBusy(true);
  transcript.scrollTop = transcript.scrollHeight;
}

function scheduleRender(): void {
  if (!streaming || streaming.renderTimer !== undefined) return;
  streaming.renderTimer = window.setTimeout(() => {
    if (!streaming) return;
    streaming.renderTimer = undefined;
    const wasNearBottom = isNearBottom();
    fillBody(streaming.body, 'assistant', streaming.text);
    keepScrolled(wasNearBottom);
  }, RENDER_INTERVAL_MS);
}

function finishStreaming(finalText?: string): Streaming | undefined {
  const done = streaming;
  if (!done) return undefined;
  if (done.renderTimer !== undefined) window.clearTimeout(done.renderTimer);
  streaming = undefined;
  const wasNearBottom = isNearBottom();
  fillBody(done.body, 'assistant', finalText ?? done.text);
  done.entry.classList.remove('streaming');
  done.entry.removeAttribute('aria-busy');
  keepScrolled(wasNearBottom);
  setBusy(false);
  return done;
}

function setBusy(busy: boolean): void {
  sendButton.disabled = busy;
  stopButton.hidden = !busy;
  sessionSelect.disabled = busy || sessions.length === 0;
  newButton.disabled = busy;
  deleteButton.disabled = busy || sessionId === null || !stored;
  document.body.classList.toggle('busy', busy);
}

// ---- sessions -----------------------------------------------------------------------

function showSession(message: Extract<ToWebview, { type: 'session' }>): void {
  // Redrawn after a change in another window: the reader stays where they were.
  const keep = message.keepScroll && message.sessionId === sessionId && !streaming;
  const wasNearBottom = isNearBottom();
  const scrolledTo = transcript.scrollTop;
  finishStreaming();
  sessionId = message.sessionId;
  sessions = message.sessions;
  stored = message.stored;
  sessionSelect.replaceChildren();
  const choices = [...sessions];
  if (sessionId !== null && !choices.some((s) => s.sessionId === sessionId)) {
    // The daemon lists each folder's active session, even before its first question; a session
    // shown by id from elsewhere (another folder's, say) may not be in this listing: add it.
    choices.unshift({ sessionId, title: message.title, messageCount: message.entries.length, active: true });
  }
  if (choices.length === 0) {
    const option = document.createElement('option');
    option.textContent = stored ? 'New session' : 'Not stored (no folder open)';
    option.value = '';
    sessionSelect.append(option);
  }
  for (const choice of choices) {
    const option = document.createElement('option');
    option.value = choice.sessionId;
    // A session not asked anything yet has no title: a readable name, not its id.
    option.textContent = choice.title ? `${choice.title} (${choice.messageCount})` : choice.messageCount ? `${choice.sessionId} (${choice.messageCount})` : 'New conversation';
    option.selected = choice.sessionId === sessionId;
    sessionSelect.append(option);
  }
  sessions = choices;
  showLineage(message);
  modelButton.textContent = message.model ?? 'model';
  modelButton.hidden = !message.model;
  shownEntries.clear();
  transcript.replaceChildren();
  for (const entry of message.entries) appendEntry(entry);
  if (message.entries.length === 0) showEmpty();
  showSummary(message.summary);
  sessionSelect.title =
    typeof message.nextAskTokens === 'number'
      ? `Switch session (the next question sends ${message.nextAskTokens} tokens of system prompt, summary and history)`
      : 'Switch session';
  transcript.scrollTop = keep && !wasNearBottom ? scrolledTo : transcript.scrollHeight;
  setBusy(false);
}

/** Turns another window stored: added below, the reader's place kept (followed if at the end). */
function appendEntries(message: Extract<ToWebview, { type: 'appendEntries' }>): void {
  if (message.sessionId !== sessionId || message.entries.length === 0) return;
  const wasNearBottom = isNearBottom();
  transcript.querySelector(':scope > .empty')?.remove();
  for (const entry of message.entries) appendEntry(entry);
  keepScrolled(wasNearBottom);
}

// ---- status of the daemon ------------------------------------------------------------

function showStatus(state: DaemonState, message?: string): void {
  daemonState = state;
  const text =
    state === 'starting' ? 'Starting deskmate…' : state === 'running' ? '' : message || 'deskmate is not running.';
  statusText.textContent = text;
  statusBox.hidden = state === 'running';
  statusBox.classList.toggle('failed', state === 'failed' || state === 'stopped');
  restartButton.hidden = state === 'starting' || state === 'running';
}

// ---- messages from the extension -----------------------------------------------

window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  const message = event.data;
  if (!message || typeof message !== 'object') return;
  switch (message.type) {
    case 'status':
      showStatus(message.state, message.message);
      break;
    case 'session':
      showSession(message);
      break;
    case 'appendEntries':
      appendEntries(message);
      break;
    case 'askStarted':
      startAnswer(message.askId, message.question, message.replaceFrom, message.context);
      break;
    case 'askDelta':
      if (streaming?.askId === message.askId) {
        streaming.text += message.delta;
        scheduleRender();
      }
      break;
    case 'askFinished': {
      if (streaming?.askId !== message.askId) break;
      const done = finishStreaming(message.answer);
      if (done && message.interrupted) markInterrupted(done.entry, 'Stopped.');
      break;
    }
    case 'askFailed': {
      const done = streaming?.askId === message.askId ? finishStreaming() : undefined;
      if (done) {
        markFailed(done.entry, message.message);
        break;
      }
      // The refresh before this message may already show the stored answer with this reason.
      const last = transcript.lastElementChild;
      const shown = last?.classList.contains('interrupted') && last.querySelector(':scope > .error')?.textContent;
      if (shown !== message.message) showError(message.message);
      break;
    }
    case 'error':
      showError(message.message);
      break;
    case 'focusPrompt':
      prompt.focus();
      break;
    case 'reveal':
      reveal(message.messageId);
      break;
    case 'contextChips':
      showChips(message.chips);
      break;
    case 'fileSuggestions':
      showSuggestions(message.query, message.files);
      break;
  }
});

/** Scrolls a message into view and marks it (a search result was opened). */
function reveal(messageId: string): void {
  const entry = Array.from(transcript.querySelectorAll<HTMLElement>(':scope > .message')).find(
    (e) => e.dataset.id === messageId,
  );
  if (!entry) return;
  for (const old of transcript.querySelectorAll('.message.found')) old.classList.remove('found');
  entry.classList.add('found');
  entry.scrollIntoView({ block: 'start' });
}

// ---- what the user does ------------------------------------------------------------

function send(): void {
  const question = prompt.value.trim();
  if (!question || streaming) return;
  post({ type: 'ask', question });
  prompt.value = '';
}

function stop(): void {
  if (streaming) post({ type: 'stop' });
}

// A button, not a form: VS Code webviews may forbid form submission (enableForms).
sendButton.addEventListener('click', send);

prompt.addEventListener('keydown', (event) => {
  if (suggesting(event)) return;
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});

document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  if (streaming) stop();
});

stopButton.addEventListener('click', stop);
restartButton.addEventListener('click', () => post({ type: 'restart' }));
newButton.addEventListener('click', () => post({ type: 'newSession' }));
sessionSelect.addEventListener('change', () => {
  if (sessionSelect.value && sessionSelect.value !== sessionId) {
    post({ type: 'switchSession', sessionId: sessionSelect.value });
  }
});
// Nothing is asked: the session goes to the trash, and the notification offers Undo.
deleteButton.addEventListener('click', () => {
  if (sessionId !== null) post({ type: 'deleteSession', sessionId });
});

transcript.addEventListener('click', (event) => {
  const action = (event.target as Element).closest('button.message-action') as HTMLButtonElement | null;
  if (action) return messageAction(action);
  const button = (event.target as Element).closest('button.code-action') as HTMLButtonElement | null;
  if (!button) return;
  const text = codeOf(button);
  if (text === undefined) return;
  if (button.dataset.action === 'copy') {
    post({ type: 'copy', text });
    flash(button, 'Copied');
  } else if (button.dataset.action === 'insert') {
    post({ type: 'insert', text });
  }
});

function messageAction(button: HTMLButtonElement): void {
  const entry = button.closest('.message') as HTMLElement | null;
  const id = entry?.dataset.id;
  const item = id ? shownEntries.get(id) : undefined;
  if (!entry || !id || !item) return;
  switch (button.dataset.messageAction) {
    case 'copy':
      post({ type: 'copy', text: item.content });
      flash(button, 'Copied');
      break;
    case 'fork':
      if (!streaming) post({ type: 'fork', messageId: id });
      break;
    case 'edit':
      startEditing(entry);
      break;
    case 'retry':
      if (!streaming) post({ type: 'retry', messageId: id });
      break;
    case 'pin':
    case 'unpin':
      post({ type: 'pin', messageId: id, pinned: button.dataset.messageAction === 'pin' });
      break;
  }
}

summaryShow.addEventListener('click', () => {
  summaryBody.hidden = !summaryBody.hidden;
  summaryShow.textContent = summaryBody.hidden ? 'Show' : 'Hide';
  summaryShow.setAttribute('aria-expanded', String(!summaryBody.hidden));
});
summaryUndo.addEventListener('click', () => {
  if (summary && !streaming) post({ type: 'uncompact', summaryId: summary.summaryId });
});

lineageSource.addEventListener('click', () => {
  const source = lineageSource.dataset.sessionId;
  if (source && !streaming) post({ type: 'switchSession', sessionId: source });
});

function flash(button: HTMLButtonElement, label: string): void {
  const original = button.textContent;
  button.textContent = label;
  window.setTimeout(() => (button.textContent = original), 1200);
}

// ---- context: the chips above the prompt, @ completion ---------------------------------

function showChips(chips: ContextChip[]): void {
  chipsBox.replaceChildren();
  for (const chip of chips) {
    const element = document.createElement('span');
    element.className = `chip ${chip.kind}`;
    element.dataset.id = chip.id;
    const label = document.createElement('span');
    label.textContent = chip.label;
    label.title = chip.kind === 'editor' ? 'The code in your editor goes along with the question' : 'This file goes along with the next question';
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'chip-remove';
    remove.textContent = '×';
    remove.title = `Do not send ${chip.label}`;
    remove.setAttribute('aria-label', `Remove ${chip.label}`);
    remove.addEventListener('click', () => post({ type: 'removeContext', id: chip.id }));
    element.append(label, remove);
    chipsBox.append(element);
  }
}

/** The @word being typed before the cursor, if any. */
function mentionAtCursor(): { start: number; query: string } | undefined {
  const before = prompt.value.slice(0, prompt.selectionStart);
  const match = /(^|\s)@([^\s@]*)$/.exec(before);
  return match ? { start: before.length - match[2].length - 1, query: match[2] } : undefined;
}

let suggestions: { uri: string; label: string }[] = [];
let suggestionIndex = 0;

function showSuggestions(query: string, files: { uri: string; label: string }[]): void {
  if (mentionAtCursor()?.query !== query) return; // typed on since
  suggestions = files;
  suggestionIndex = 0;
  renderSuggestions();
}

function renderSuggestions(): void {
  suggestionsBox.replaceChildren();
  suggestionsBox.hidden = suggestions.length === 0;
  suggestions.forEach((file, index) => {
    const item = document.createElement('li');
    item.setAttribute('role', 'option');
    item.setAttribute('aria-selected', String(index === suggestionIndex));
    item.textContent = file.label;
    item.addEventListener('mousedown', (event) => {
      event.preventDefault(); // keep the prompt's focus and cursor
      acceptSuggestion(index);
    });
    suggestionsBox.append(item);
  });
}

function closeSuggestions(): void {
  suggestions = [];
  renderSuggestions();
}

function acceptSuggestion(index: number): void {
  const file = suggestions[index];
  const mention = mentionAtCursor();
  if (!file || !mention) return closeSuggestions();
  const after = prompt.value.slice(prompt.selectionStart);
  const inserted = `@${file.label} `;
  prompt.value = prompt.value.slice(0, mention.start) + inserted + after;
  const cursor = mention.start + inserted.length;
  prompt.setSelectionRange(cursor, cursor);
  post({ type: 'attachFile', uri: file.uri, label: file.label });
  closeSuggestions();
}

/** Keys for the suggestion list while it is open; true when the key was for it. */
function suggesting(event: KeyboardEvent): boolean {
  if (suggestions.length === 0) return false;
  if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
    suggestionIndex = (suggestionIndex + (event.key === 'ArrowDown' ? 1 : -1) + suggestions.length) % suggestions.length;
    renderSuggestions();
  } else if (event.key === 'Enter' || event.key === 'Tab') {
    acceptSuggestion(suggestionIndex);
  } else if (event.key === 'Escape') {
    closeSuggestions();
    event.stopPropagation();
  } else {
    return false;
  }
  event.preventDefault();
  return true;
}

prompt.addEventListener('input', () => {
  const mention = mentionAtCursor();
  if (mention) post({ type: 'suggestFiles', query: mention.query });
  else if (suggestions.length) closeSuggestions();
});
prompt.addEventListener('blur', () => window.setTimeout(closeSuggestions, 100));
addContextButton.addEventListener('click', () => post({ type: 'addContext' }));
modelButton.addEventListener('click', () => post({ type: 'pickModel' }));

showStatus(daemonState);
setBusy(false);
post({ type: 'ready' });
