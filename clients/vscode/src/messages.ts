// Messages between the extension and the chat webview. Both sides import this
// file, so it must stay free of `vscode` and of DOM types.

export interface ChatEntry {
  /** The stored message's id: what Fork, Edit and Retry name. */
  id?: string;
  role: 'user' | 'assistant';
  content: string;
  /** "interrupted" for a stopped or failed answer, as the daemon stores it. */
  status?: string;
  /** Why the answer failed, as the daemon stores it: shown the same live and after a reload. */
  error?: string;
  /** What went along with a question: "calc.py:8-12", "util.py". */
  context?: string[];
  /** Pinned: always sent to the model, never summarized away. */
  pinned?: boolean;
}

/** A piece of code that goes along with the next question, shown above the prompt. */
export interface ContextChip {
  /** "editor" for the editor's file, else the added file's URI. */
  id: string;
  label: string;
  kind: 'editor' | 'file';
}

/** The summary the daemon sends in place of earlier messages, for the banner above them. */
export interface SummaryBanner {
  summaryId: string;
  /** How many messages it stands for (they are still shown). */
  messageCount: number;
  text: string;
  /** The id of the last message it covers: the banner's Show marks the messages up to it. */
  toMessageId: string;
}

export interface SessionChoice {
  sessionId: string;
  title: string;
  messageCount: number;
  active: boolean;
}

/** Where the shown session was forked from, for the header's indicator. */
export interface LineageView {
  sessionId: string;
  messageId: string;
  /** The source's title, when the listing has it. */
  title?: string;
}

export type DaemonState = 'starting' | 'running' | 'failed' | 'stopped';

export type ToWebview =
  | { type: 'status'; state: DaemonState; message?: string }
  | {
      type: 'session';
      sessionId: string | null;
      title: string;
      entries: ChatEntry[];
      sessions: SessionChoice[];
      /** false when there is no folder: the conversation is not stored. */
      stored: boolean;
      forkedFrom?: LineageView | null;
      /** How many forks were made from this session. */
      forkCount?: number;
      /** The same session redrawn (changed in another window): keep the reader's place. */
      keepScroll?: boolean;
      /** The model the workspace's asks use, for the header. */
      model?: string;
      /** The summary in use, if any: "N earlier messages summarized — Show / Undo". */
      summary?: SummaryBanner | null;
      /** Tokens the next ask sends before its question (the daemon's count). */
      nextAskTokens?: number | null;
    }
  /** Turns stored by another window (an editor, the terminal): added below, the reader's place kept. */
  | { type: 'appendEntries'; sessionId: string; entries: ChatEntry[] }
  /** `replaceFrom`: an edit or retry; the message with that id and all after it give way to the new turn. */
  | { type: 'askStarted'; askId: string; question: string; replaceFrom?: string; context?: string[] }
  | { type: 'askDelta'; askId: string; delta: string }
  | { type: 'askFinished'; askId: string; answer: string; interrupted: boolean }
  | { type: 'askFailed'; askId: string; message: string }
  | { type: 'error'; message: string }
  | { type: 'focusPrompt' }
  /** What goes along with the next question. */
  | { type: 'contextChips'; chips: ContextChip[] }
  /** Workspace files matching what follows an @ in the prompt. */
  | { type: 'fileSuggestions'; query: string; files: { uri: string; label: string }[] }
  /** Scroll the message with this id into view and mark it for a moment (a search result opened). */
  | { type: 'reveal'; messageId: string };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'ask'; question: string }
  | { type: 'stop' }
  | { type: 'copy'; text: string }
  | { type: 'insert'; text: string }
  | { type: 'newSession' }
  | { type: 'switchSession'; sessionId: string }
  | { type: 'deleteSession'; sessionId: string }
  | { type: 'fork'; messageId: string }
  | { type: 'edit'; messageId: string; question: string }
  | { type: 'retry'; messageId: string }
  | { type: 'restart' }
  | { type: 'removeContext'; id: string }
  /** "+ add context": pick workspace files to send along. */
  | { type: 'addContext' }
  /** The header's model button: choose from the server's models. */
  | { type: 'pickModel' }
  | { type: 'suggestFiles'; query: string }
  | { type: 'attachFile'; uri: string; label: string }
  | { type: 'pin'; messageId: string; pinned: boolean }
  | { type: 'uncompact'; summaryId: string };
