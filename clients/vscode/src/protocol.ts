// Types of the daemon's protocol (docs/protocol.md). The daemon is the only
// source of truth; these mirror what it documents, nothing more.

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface AskContext {
  uri: string;
  range?: Range;
  text?: string;
  languageId?: string;
}

/** A question's context as stored: the editor's code, then the files added (`attachments`). */
export interface StoredContext extends AskContext {
  note?: string;
  attachments?: StoredContext[];
}

export interface AskArgs {
  question: string;
  sessionId?: string;
  workspaceUri?: string;
  context?: AskContext;
  /** Files the user added (@file, + add context); one with neither range nor text goes whole. */
  attachments?: AskContext[];
  askId?: string;
  /** Edit and resend (with `question`) or, with `regenerate`, ask again: the answer goes to a new fork. */
  editMessageId?: string;
  regenerate?: boolean;
}

/** Where a fork came from: its source session and the message it was made at. */
export interface Lineage {
  sessionId: string;
  messageId: string;
}

export interface ForkInfo {
  sessionId: string;
  messageId: string;
  title: string;
}

export interface ForkResult {
  sessionId: string;
  title: string;
  messageCount: number;
  forkedFrom: Lineage;
}

export interface AskResult {
  sessionId: string | null;
  askId: string;
  answer: string;
  interrupted: boolean;
  usage?: { promptTokens: number; completionTokens: number; totalTokens: number };
  /** The source, when the ask made a fork (editMessageId). */
  forkedFrom?: Lineage | null;
  /** Earlier turns this ask summarized first. */
  compacted?: Summary;
  /** Why they could not be (the ask went on without a summary). */
  compactionError?: string;
}

/** A summary of earlier messages (deskmate.compactSession, getSession's summaries). */
export interface Summary {
  summaryId: string;
  covers: { fromMessageId: string; toMessageId: string };
  summary: string;
  messageCount: number;
  createdAt: string;
  model: string | null;
  instructions: string | null;
  /** In getSession: the summary prompts use. */
  active?: boolean;
}

/** getSession's nextAsk: what the next ask sends before its question. */
export interface NextAsk {
  tokens: number;
  contextWindow: number | null;
  limit: number | null;
  historyBudget: number;
  countedBy: string;
  summarizedMessages: number;
  leftOutMessages: number;
}

export interface AskDelta {
  askId: string;
  sessionId: string | null;
  delta: string;
  index: number;
}

export interface SessionSummary {
  sessionId: string;
  title: string;
  workspaceUri: string | null;
  createdAt: string;
  updatedAt: string;
  messageCount: number;
  tags?: string[];
  pinned?: boolean;
  forkedFrom?: Lineage | null;
  /** The project the session belongs to (docs/protocol.md, Projects); null: none. */
  projectId?: string | null;
  active: boolean;
}

/** One `deskmate.searchSessions` result; `messageId` and `role` are null for a title match. */
export interface SearchHit {
  sessionId: string;
  title: string;
  messageId: string | null;
  role: string | null;
  timestamp: string | null;
  /** The matching text, each match between `**`. */
  snippet: string;
}

export interface SearchResult {
  results: SearchHit[];
  total: number;
}

export interface StoredMessage {
  id: string;
  role: string;
  content: string;
  timestamp: string;
  model?: string;
  status?: string;
  /** Why a failed answer failed. */
  error?: string;
  /** What went along with a question. */
  context?: StoredContext;
  /** Always sent to the model, never summarized. */
  pinned?: boolean;
}

export interface SessionView {
  sessionId: string | null;
  title: string;
  workspaceUri: string | null;
  active: boolean;
  persisted: boolean;
  forkedFrom?: Lineage | null;
  forks?: ForkInfo[];
  /** With `sinceMessageId`: only the messages after it (all of them when `reset`). */
  messages: StoredMessage[];
  messageCount?: number;
  sinceMessageId?: string;
  /** The session no longer holds `sinceMessageId` (it was rewritten): `messages` is all of it. */
  reset?: boolean;
  summaries?: Summary[];
  pinnedMessages?: string[];
  nextAsk?: NextAsk | null;
  nextAskTokens?: number | null;
  /** The model the workspace's asks use (its chosen one, else the model setting). */
  model?: string;
}

/** `deskmate/sessionChanged`: another process (editor, terminal) changed a session this client opened. */
export interface SessionChanged {
  sessionId: string;
  change: 'appended' | 'updated' | 'deleted';
  messageCount: number;
}

/** `deskmate.listModels`: what the server offers, and what the workspace uses. */
export interface ModelList {
  models: { id: string }[];
  current: string;
  default: string;
}

export interface DeleteResult {
  deleted: boolean;
  trashed: boolean;
  purgeAfter?: string;
}

/** A `deskmate.listSessions {trash: true}` entry. */
export interface TrashedSession extends SessionSummary {
  deletedAt: string;
  purgeAfter: string | null;
}

export interface RestoreResult {
  sessionId: string;
  title: string;
  messageCount: number;
}

export interface ExportResult {
  sessionId: string | null;
  title: string;
  markdown: string;
}

/** Command names, as listed in the server's executeCommandProvider. */
export const Commands = {
  ask: 'deskmate.ask',
  cancel: 'deskmate.cancel',
  listSessions: 'deskmate.listSessions',
  getSession: 'deskmate.getSession',
  newSession: 'deskmate.newSession',
  switchSession: 'deskmate.switchSession',
  forkSession: 'deskmate.forkSession',
  deleteSession: 'deskmate.deleteSession',
  restoreSession: 'deskmate.restoreSession',
  exportSession: 'deskmate.exportSession',
  renameSession: 'deskmate.renameSession',
  tagSession: 'deskmate.tagSession',
  pinSession: 'deskmate.pinSession',
  searchSessions: 'deskmate.searchSessions',
  compactSession: 'deskmate.compactSession',
  uncompactSession: 'deskmate.uncompactSession',
  pinMessage: 'deskmate.pinMessage',
  status: 'deskmate.status',
  listModels: 'deskmate.listModels',
  setModel: 'deskmate.setModel',
} as const;

export const ASK_DELTA_NOTIFICATION = 'deskmate/askDelta';
export const SESSION_CHANGED_NOTIFICATION = 'deskmate/sessionChanged';

/** JSON-RPC error codes the daemon answers with. */
export const ErrorCodes = {
  invalidParams: -32602,
  requestFailed: -32803,
  requestCancelled: -32800,
} as const;
