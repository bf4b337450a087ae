// What the chat does, between the daemon and the view. Free of `vscode`: the
// extension hands in a DaemonPort and a ChatHost, the unit tests hand in fakes.

import { ChatContext, contextLabel, type EditorContext, type FileChoice, storedContextLabels } from './chatContext';
import { DeskmateError, toDeskmateError } from './errors';
import type {
  ChatEntry,
  DaemonState,
  FromWebview,
  LineageView,
  SessionChoice,
  SummaryBanner,
  ToWebview,
} from './messages';
import {
  type AskContext,
  type AskDelta,
  type AskResult,
  Commands,
  type DeleteResult,
  type ExportResult,
  type ForkResult,
  type ModelList,
  type SearchResult,
  type RestoreResult,
  type SessionChanged,
  type SessionSummary,
  type SessionView,
  type StoredMessage,
  type Summary,
  type TrashedSession,
} from './protocol';

export interface DaemonPort {
  readonly state: DaemonState;
  /** Runs a `deskmate.*` command; rejects with a DeskmateError written for the user. */
  execute<T>(command: string, args?: object): Promise<T>;
}

export type AskOrigin = 'view' | 'palette';

export interface ChatHost {
  /** Sends to the chat view if it is open; dropped otherwise. */
  post(message: ToWebview): void;
  /** The workspace folder whose session the chat shows (undefined: no folder). */
  workspaceUri(): string | undefined;
  /** Shows progress while `task` runs; `cancel` is called if the user cancels it. */
  progress<T>(origin: AskOrigin, title: string, task: () => Promise<T>, cancel: () => void): Promise<T>;
  /** Tells the user about an error that the chat view may not show. */
  showError(message: string): void;
  /** Tells the user `message` with an Undo button; resolves true if they press it. */
  offerUndo(message: string): Promise<boolean>;
  copy(text: string): void | Promise<void>;
  insert(text: string): void | Promise<void>;
  restartDaemon(): void | Promise<void>;
  /** Workspace files whose path contains `query`, for @ completion (a few dozen at most). */
  findFiles(query: string): Promise<FileChoice[]>;
  /** Lets the user pick workspace files to send along ("+ add context"); [] when cancelled. */
  pickFiles(): Promise<FileChoice[]>;
  /** Lets the user pick one of `models` (`current` marked); undefined when cancelled. */
  pickModel(models: string[], current: string): Promise<string | undefined>;
}

interface RunningAsk {
  askId: string;
  question: string;
  text: string;
  /** What went along, as the view labels it. */
  context: string[];
}

/** An ask that edits or retries an earlier question: the daemon answers it in a new fork. */
export interface Resend {
  /** The question to replace (edit) or ask again (regenerate). */
  messageId: string;
  regenerate?: boolean;
}

export function randomAskId(): string {
  return `vscode-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export class ChatController {
  private running: RunningAsk | undefined;
  private status: { state: DaemonState; message?: string } = { state: 'starting' };
  /**
   * The session the view shows, its stored messages (what Fork, Edit and Retry name) and the
   * listing of the last refresh (what Delete's Undo names).
   */
  private shown: { sessionId: string | null; messages: StoredMessage[]; sessions: SessionSummary[] } = {
    sessionId: null,
    messages: [],
    sessions: [],
  };

  /** Changes made in other windows, caught up with one after another (never two reads at once). */
  private catchingUp: Promise<void> = Promise.resolve();

  /** What goes along with the next question typed in the chat. */
  readonly context = new ChatContext();

  constructor(
    private readonly daemon: DaemonPort,
    private readonly host: ChatHost,
    private readonly newAskId: () => string = randomAskId,
  ) {}

  /** The ask being answered, if any. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  // ---- events from the daemon and the view --------------------------------------

  onDaemonState(state: DaemonState, message?: string): void {
    this.status = { state, message };
    this.host.post({ type: 'status', state, message });
    if (state === 'running') void this.refresh();
  }

  onAskDelta(delta: AskDelta): void {
    if (this.running?.askId !== delta.askId) return;
    this.running.text += delta.delta;
    this.host.post({ type: 'askDelta', askId: delta.askId, delta: delta.delta });
  }

  /**
   * Another window (an editor, `deskmate ask` in a terminal) changed a session this one opened:
   * turns it stored are added below the shown ones, as they are stored; a rename redraws the
   * header, a delete says so. The reader's place in the chat is kept.
   */
  onSessionChanged(change: SessionChanged): Promise<void> {
    this.catchingUp = this.catchingUp.then(() => this.catchUp(change)).catch(() => undefined);
    return this.catchingUp;
  }

  private async catchUp(change: SessionChanged): Promise<void> {
    if (change.sessionId !== this.shown.sessionId || this.running) return; // this window refreshes after its own ask
    if (change.change === 'deleted') {
      this.host.post({ type: 'error', message: 'This session was deleted in another window.' });
      return;
    }
    if (change.change === 'updated') return this.refresh(true);
    const last = this.shown.messages[this.shown.messages.length - 1];
    const view = await this.daemon.execute<SessionView>(Commands.getSession, {
      ...this.where(),
      sessionId: change.sessionId,
      ...(last ? { sinceMessageId: last.id } : {}),
    });
    if (this.running || this.shown.sessionId !== change.sessionId) return;
    if (last && view.reset !== false) return this.refresh(true); // rewritten elsewhere: draw it again
    const fresh = view.messages.filter((m) => !this.shown.messages.some((shown) => shown.id === m.id));
    if (fresh.length === 0) return;
    this.shown.messages = [...this.shown.messages, ...fresh];
    this.host.post({ type: 'appendEntries', sessionId: change.sessionId, entries: this.entriesOf({ ...view, messages: fresh }) });
  }

  /** The view (re)opened: give it everything it shows, including an answer still streaming. */
  async onViewReady(): Promise<void> {
    this.host.post({ type: 'status', ...this.status });
    if (this.daemon.state === 'running' || this.daemon.state === 'starting') await this.refresh();
    const running = this.running;
    this.postChips();
    if (running) {
      this.host.post({ type: 'askStarted', askId: running.askId, question: running.question, context: running.context });
      if (running.text) this.host.post({ type: 'askDelta', askId: running.askId, delta: running.text });
    }
  }

  async handle(message: FromWebview): Promise<void> {
    switch (message.type) {
      case 'ready':
        return this.onViewReady();
      case 'ask': {
        await this.attachMentioned(message.question);
        const { context, attachments } = this.context.take();
        this.postChips();
        await this.ask(message.question, context, 'view', undefined, attachments);
        return;
      }
      case 'removeContext':
        this.context.remove(message.id);
        return this.postChips();
      case 'addContext':
        for (const file of await this.host.pickFiles()) this.context.add(file);
        return this.postChips();
      case 'attachFile':
        this.context.add({ uri: message.uri, label: message.label });
        return this.postChips();
      case 'pickModel':
        await this.guard(() => this.pickModel());
        return;
      case 'suggestFiles': {
        const files = await this.host.findFiles(message.query);
        this.host.post({ type: 'fileSuggestions', query: message.query, files });
        return;
      }
      case 'stop':
        return this.stop();
      case 'copy':
        return this.host.copy(message.text);
      case 'insert':
        return this.host.insert(message.text);
      case 'newSession':
        await this.guard(() => this.newSession());
        return;
      case 'switchSession':
        await this.guard(() => this.switchSession(message.sessionId));
        return;
      case 'deleteSession':
        await this.guard(() => this.deleteSession(message.sessionId));
        return;
      case 'fork':
        await this.guard(() => this.fork(message.messageId));
        return;
      case 'edit':
        await this.ask(message.question, undefined, 'view', { messageId: message.messageId });
        return;
      case 'retry':
        await this.retry(message.messageId);
        return;
      case 'pin':
        await this.guard(() => this.pinMessage(message.messageId, message.pinned));
        return;
      case 'uncompact':
        await this.guard(() => this.uncompactSession(message.summaryId));
        return;
      case 'restart':
        return this.host.restartDaemon();
    }
  }

  // ---- asking ---------------------------------------------------------------------------

  /**
   * Asks the daemon; the answer streams into the view. Resolves with the result,
   * or undefined when the ask failed (the error is shown inline and, for palette
   * asks, as a notification too).
   */
  async ask(
    question: string,
    context?: AskContext,
    origin: AskOrigin = 'view',
    resend?: Resend,
    attachments?: AskContext[],
  ): Promise<AskResult | undefined> {
    question = question.trim();
    if (!question) return undefined;
    if (this.running) {
      const message = 'deskmate is still answering. Wait for the answer or press Stop.';
      this.host.post({ type: 'error', message });
      if (origin === 'palette') this.host.showError(message);
      return undefined;
    }
    const askId = this.newAskId();
    const workspaceUri = this.host.workspaceUri();
    const labels = [...(context ? [context] : []), ...(attachments ?? [])].map((c) => contextLabel(c.uri, c.range, workspaceUri));
    const running: RunningAsk = { askId, question, text: '', context: labels };
    this.running = running;
    this.host.post({
      type: 'askStarted',
      askId,
      question,
      ...(resend ? { replaceFrom: resend.messageId } : {}),
      ...(labels.length ? { context: labels } : {}),
    });
    const args: Record<string, unknown> = { question, askId };
    if (workspaceUri) args.workspaceUri = workspaceUri;
    if (context) args.context = context;
    if (attachments?.length) args.attachments = attachments;
    if (resend) {
      // In the session shown, whichever is active now; the daemon makes the fork.
      if (this.shown.sessionId) args.sessionId = this.shown.sessionId;
      args.editMessageId = resend.messageId;
      if (resend.regenerate) {
        args.regenerate = true;
        delete args.question;
      }
    }
    let failure: string | undefined;
    try {
      const result = await this.host.progress(
        origin,
        'deskmate is answering…',
        () => this.daemon.execute<AskResult>(Commands.ask, args),
        () => void this.stop(),
      );
      this.host.post({ type: 'askFinished', askId, answer: result.answer, interrupted: result.interrupted });
      return result;
    } catch (error) {
      failure = toDeskmateError(error).message;
      return undefined;
    } finally {
      this.running = undefined;
      await this.refresh();
      // After the refresh, which shows the stored (partial) answer, so that the error stays below it.
      if (failure !== undefined) {
        this.host.post({ type: 'askFailed', askId, message: failure });
        if (origin === 'palette') this.host.showError(failure);
      }
    }
  }

  /** Stops the running ask; its partial answer is kept by the daemon. */
  async stop(): Promise<void> {
    const running = this.running;
    if (!running) return;
    try {
      await this.daemon.execute(Commands.cancel, { askId: running.askId });
    } catch (error) {
      this.host.post({ type: 'error', message: toDeskmateError(error).message });
    }
  }

  /** Asks the question of the answer `messageId` (or that question itself) again, in a fork. */
  async retry(messageId: string): Promise<AskResult | undefined> {
    const messages = this.shown.messages;
    let index = messages.findIndex((m) => m.id === messageId);
    while (index > 0 && messages[index].role !== 'user') index -= 1;
    const question = messages[index];
    if (!question || question.role !== 'user') {
      this.host.post({ type: 'error', message: 'There is no question before that message to ask again.' });
      return undefined;
    }
    return this.ask(question.content, undefined, 'view', { messageId: question.id, regenerate: true });
  }

  /** A new session holding the shown history up to `messageId`; it becomes the folder's active one. */
  async fork(messageId: string): Promise<ForkResult> {
    this.ensureIdle();
    const result = await this.daemon.execute<ForkResult>(Commands.forkSession, {
      ...this.where(),
      ...(this.shown.sessionId ? { sessionId: this.shown.sessionId } : {}),
      messageId,
    });
    await this.refresh();
    return result;
  }

  // ---- sessions -------------------------------------------------------------------------

  /** Sends the current session's history and the session list to the view (`keepScroll`: the
   * same session redrawn after a change elsewhere; the reader's place is kept). */
  async refresh(keepScroll = false): Promise<void> {
    try {
      const where = this.where();
      const [view, list] = await Promise.all([
        this.daemon.execute<SessionView>(Commands.getSession, where),
        this.daemon.execute<{ sessions: SessionSummary[] }>(Commands.listSessions, where),
      ]);
      this.shown = { sessionId: view.sessionId, messages: view.messages, sessions: list.sessions };
      this.host.post({
        type: 'session',
        sessionId: view.sessionId,
        title: view.title,
        entries: this.entriesOf(view),
        sessions: list.sessions.map(toChoice),
        stored: view.sessionId !== null,
        forkedFrom: lineageOf(view, list.sessions),
        forkCount: view.forks?.length ?? 0,
        ...(keepScroll ? { keepScroll: true } : {}),
        ...(view.model ? { model: view.model } : {}),
        summary: bannerOf(view),
        nextAskTokens: view.nextAskTokens ?? null,
      });
    } catch (error) {
      // Nothing to show before the daemon runs; the status line says why.
      if (this.daemon.state === 'running') this.host.post({ type: 'error', message: toDeskmateError(error).message });
    }
  }

  async listSessions(): Promise<SessionSummary[]> {
    const list = await this.daemon.execute<{ sessions: SessionSummary[] }>(Commands.listSessions, this.where());
    return list.sessions;
  }

  async newSession(title?: string): Promise<{ sessionId: string; title: string }> {
    this.ensureIdle();
    const result = await this.daemon.execute<{ sessionId: string; title: string }>(Commands.newSession, {
      ...this.where(),
      ...(title ? { title } : {}),
    });
    await this.refresh();
    return result;
  }

  async switchSession(sessionId: string): Promise<void> {
    this.ensureIdle();
    await this.daemon.execute(Commands.switchSession, { sessionId, ...this.where() });
    await this.refresh();
  }

  /**
   * Moves a session to the trash, asking nothing, and offers Undo in a notification
   * (which restores it, and shows it again if the chat showed it). `permanent` deletes
   * it for good: confirming that is the caller's job.
   */
  async deleteSession(sessionId: string, permanent = false): Promise<DeleteResult> {
    this.ensureIdle();
    const wasShown = this.shown.sessionId === sessionId;
    const title = this.shown.sessions.find((s) => s.sessionId === sessionId)?.title || sessionId;
    const result = await this.daemon.execute<DeleteResult>(Commands.deleteSession, {
      sessionId,
      ...(permanent ? { permanent: true } : {}),
    });
    if (wasShown) {
      // The chat goes on in the most recently used session left, not the folder's oldest.
      const left = (await this.listSessions()).filter((s) => s.sessionId !== sessionId && s.messageCount > 0);
      const recent = left.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt))[0];
      if (recent && !recent.active) await this.daemon.execute(Commands.switchSession, { sessionId: recent.sessionId, ...this.where() });
    }
    await this.refresh();
    if (result.trashed) void this.offerUndo(sessionId, title, wasShown);
    return result;
  }

  private async offerUndo(sessionId: string, title: string, wasShown: boolean): Promise<void> {
    if (!(await this.host.offerUndo(`deskmate: moved "${title}" to the trash.`))) return;
    try {
      await this.restoreSession(sessionId, wasShown);
    } catch (error) {
      this.host.showError(toDeskmateError(error).message);
    }
  }

  /** Takes a session out of the trash; `show` makes it the chat's session again. */
  async restoreSession(sessionId: string, show = false): Promise<RestoreResult> {
    const restored = await this.daemon.execute<RestoreResult>(Commands.restoreSession, { sessionId });
    if (show && !this.running) await this.daemon.execute(Commands.switchSession, { sessionId, ...this.where() });
    await this.refresh();
    return restored;
  }

  /** The workspace's trash, most recently deleted first. */
  async listTrash(): Promise<TrashedSession[]> {
    const list = await this.daemon.execute<{ sessions: TrashedSession[] }>(Commands.listSessions, {
      ...this.where(),
      trash: true,
    });
    return list.sessions;
  }

  /** Searches this workspace's sessions (`all`: every session), best first. */
  async searchSessions(query: string, all = false): Promise<SearchResult> {
    return this.daemon.execute<SearchResult>(Commands.searchSessions, {
      query,
      ...this.where(),
      ...(all ? { all: true } : {}),
      limit: 50,
    });
  }

  /** Shows session `sessionId` (making it the folder's active one), scrolled to `messageId`. */
  async openAt(sessionId: string, messageId: string | null): Promise<void> {
    if (this.shown.sessionId !== sessionId) await this.switchSession(sessionId);
    if (messageId) this.host.post({ type: 'reveal', messageId });
  }

  async renameSession(sessionId: string, title: string): Promise<string> {
    const result = await this.daemon.execute<{ title: string }>(Commands.renameSession, { sessionId, title });
    await this.refresh();
    return result.title;
  }

  async tagSession(sessionId: string, add: string[], remove: string[]): Promise<string[]> {
    const result = await this.daemon.execute<{ tags: string[] }>(Commands.tagSession, { sessionId, add, remove });
    return result.tags;
  }

  async pinSession(sessionId: string, pinned: boolean): Promise<boolean> {
    const result = await this.daemon.execute<{ pinned: boolean }>(Commands.pinSession, { sessionId, pinned });
    await this.refresh();
    return result.pinned;
  }

  /**
   * Summarizes the shown session's turns before its latest one (`instructions`: what to keep);
   * the messages stay, and the banner offers Undo.
   */
  async compactSession(instructions?: string): Promise<Summary & { sessionId: string }> {
    this.ensureIdle();
    const result = await this.daemon.execute<Summary & { sessionId: string }>(Commands.compactSession, {
      ...this.where(),
      ...(this.shown.sessionId ? { sessionId: this.shown.sessionId } : {}),
      ...(instructions ? { instructions } : {}),
    });
    await this.refresh();
    return result;
  }

  /** Drops a summary of the shown session: the next ask sends its messages again, as far as they fit. */
  async uncompactSession(summaryId: string): Promise<void> {
    if (!this.shown.sessionId) return;
    await this.daemon.execute(Commands.uncompactSession, { sessionId: this.shown.sessionId, summaryId });
    await this.refresh();
  }

  /** Pins a message of the shown session (always sent, never summarized), or unpins it. */
  async pinMessage(messageId: string, pinned: boolean): Promise<boolean> {
    if (!this.shown.sessionId) throw new DeskmateError('This conversation is not stored: open a folder to pin messages.');
    const result = await this.daemon.execute<{ pinned: boolean }>(Commands.pinMessage, {
      sessionId: this.shown.sessionId,
      messageId,
      pinned,
    });
    await this.refresh();
    return result.pinned;
  }

  async exportSession(): Promise<ExportResult> {
    return this.daemon.execute<ExportResult>(Commands.exportSession, this.where());
  }

  // ---- models ------------------------------------------------------------------------------

  /** Lists the server's models and uses the one the user picks for this workspace. */
  async pickModel(): Promise<string | undefined> {
    const list = await this.daemon.execute<ModelList>(Commands.listModels, this.where());
    const picked = await this.host.pickModel(list.models.map((m) => m.id), list.current);
    if (!picked || picked === list.current) return undefined;
    const result = await this.daemon.execute<{ model: string }>(Commands.setModel, { ...this.where(), model: picked });
    await this.refresh();
    return result.model;
  }

  // ---- context -----------------------------------------------------------------------------

  /** The editor's file, selection or scroll changed: the chip follows. */
  onEditorChanged(editor: EditorContext | undefined): void {
    if (this.context.setEditor(editor)) this.postChips();
  }

  /** `@path` typed in full (not picked from the list) names a workspace file just the same. */
  private async attachMentioned(question: string): Promise<void> {
    for (const [, path] of question.matchAll(/(?:^|\s)@(\S+)/g)) {
      const name = path.replace(/[?!.,;:]+$/, '');
      const file = (await this.host.findFiles(name)).find((f) => f.label === name);
      if (file) this.context.add(file);
    }
  }

  private postChips(): void {
    this.host.post({ type: 'contextChips', chips: this.context.chips() });
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** The workspace folder the chat is about (its URI), if any. */
  workspaceUri(): string | undefined {
    return this.host.workspaceUri();
  }

  private where(): { workspaceUri?: string } {
    const workspaceUri = this.host.workspaceUri();
    return workspaceUri ? { workspaceUri } : {};
  }

  private ensureIdle(): void {
    if (this.running) throw new DeskmateError('deskmate is still answering. Wait for the answer or press Stop.');
  }

  /** Runs a view action; its failure is shown inline in the view. */
  private async guard(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
    } catch (error) {
      this.host.post({ type: 'error', message: toDeskmateError(error).message });
    }
  }

  private entriesOf(view: SessionView): ChatEntry[] {
    const entries: ChatEntry[] = [];
    for (const message of view.messages) {
      if (message.role !== 'user' && message.role !== 'assistant') continue;
      entries.push({
        id: message.id,
        role: message.role,
        content: message.content,
        ...(message.status ? { status: message.status } : {}),
        ...(message.error ? { error: message.error } : {}),
        ...(message.role === 'user' && message.context ? { context: storedContextLabels(message.context, view.workspaceUri ?? this.host.workspaceUri()) } : {}),
        ...(message.pinned ? { pinned: true } : {}),
      });
    }
    // The daemon stores a question when it is asked: while its answer streams,
    // the view shows that question itself (askStarted), so it is left out here.
    const last = entries[entries.length - 1];
    if (this.running && last?.role === 'user' && last.content === this.running.question) entries.pop();
    return entries;
  }
}

function lineageOf(view: SessionView, sessions: SessionSummary[]): LineageView | null {
  const from = view.forkedFrom;
  if (!from) return null;
  const source = sessions.find((s) => s.sessionId === from.sessionId);
  return { sessionId: from.sessionId, messageId: from.messageId, ...(source ? { title: source.title } : {}) };
}

function bannerOf(view: SessionView): SummaryBanner | null {
  const active = view.summaries?.find((s) => s.active);
  if (!active) return null;
  return {
    summaryId: active.summaryId,
    messageCount: active.messageCount,
    text: active.summary,
    toMessageId: active.covers.toMessageId,
  };
}

function toChoice(session: SessionSummary): SessionChoice {
  return {
    sessionId: session.sessionId,
    title: session.title,
    messageCount: session.messageCount,
    active: session.active,
  };
}
