// The palette commands. Their ids avoid the daemon's own `deskmate.*` command
// names, which vscode-languageclient registers as VS Code commands too.

import * as vscode from 'vscode';
import type { ChatController } from './chatController';
import type { ChatViewProvider } from './chatView';
import type { Daemon } from './daemon';
import { toDeskmateError } from './errors';
import { exportFileName } from './exportName';
import type { AskContext, SessionSummary, TrashedSession } from './protocol';
import { API_KEY_SECRET } from './secrets';
import { madeElsewhere } from './sessionOrigin';
import { showSessions } from './sessionSearch';
import type { WorkspaceTracker } from './workspace';

export const CommandIds = {
  openChat: 'deskmate.chat.open',
  askAboutSelection: 'deskmate.chat.askAboutSelection',
  newSession: 'deskmate.chat.newSession',
  switchSession: 'deskmate.chat.switchSession',
  deleteSession: 'deskmate.chat.deleteSession',
  trash: 'deskmate.chat.trash',
  exportSession: 'deskmate.chat.exportSession',
  stop: 'deskmate.chat.stop',
  setApiKey: 'deskmate.chat.setApiKey',
  clearApiKey: 'deskmate.chat.clearApiKey',
  restartDaemon: 'deskmate.chat.restartDaemon',
  showLog: 'deskmate.chat.showLog',
  sessions: 'deskmate.chat.sessions',
  searchAllSessions: 'deskmate.chat.searchAllSessions',
  chooseModel: 'deskmate.chat.chooseModel',
  compactSession: 'deskmate.chat.compactSession',
} as const;

interface Parts {
  controller: ChatController;
  daemon: Daemon;
  view: ChatViewProvider;
  workspace: WorkspaceTracker;
  output: vscode.LogOutputChannel;
}

export function registerCommands(context: vscode.ExtensionContext, parts: Parts): vscode.Disposable[] {
  const { controller, daemon, view, output } = parts;
  const run = (id: string, action: (...args: unknown[]) => Promise<unknown> | unknown) =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        await action(...args);
      } catch (error) {
        void vscode.window.showErrorMessage(toDeskmateError(error).message);
      }
    });

  return [
    run(CommandIds.openChat, () => view.reveal(true)),

    run(CommandIds.askAboutSelection, async () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) {
        void vscode.window.showInformationMessage('deskmate: open a file and select the code to ask about.');
        return;
      }
      const question = await vscode.window.showInputBox({
        title: 'Ask deskmate about the selection',
        prompt: editor.selection.isEmpty ? 'Nothing is selected: the whole file is sent.' : 'The selected text is sent with the question.',
        placeHolder: 'What does this code do?',
        ignoreFocusOut: true,
      });
      if (!question?.trim()) return;
      await view.reveal(false);
      await controller.ask(question, selectionContext(editor), 'palette');
    }),

    run(CommandIds.newSession, async () => {
      const title = await vscode.window.showInputBox({
        title: 'New deskmate session',
        prompt: 'A title for the session (optional)',
        ignoreFocusOut: true,
      });
      if (title === undefined) return;
      await controller.newSession(title.trim() || undefined);
      await view.reveal(true);
    }),

    run(CommandIds.switchSession, async () => {
      const picked = await pickSession(controller, 'Switch to session');
      if (!picked) return;
      await controller.switchSession(picked.sessionId);
      await view.reveal(false);
    }),

    run(CommandIds.deleteSession, async () => {
      // Nothing is asked: the session goes to the trash and the notification offers Undo.
      const picked = await pickSession(controller, 'Move a session to the trash');
      if (!picked) return;
      const result = await controller.deleteSession(picked.sessionId);
      if (!result.deleted) void vscode.window.showInformationMessage('deskmate: there was nothing to delete.');
    }),

    run(CommandIds.trash, () => showTrash(controller)),

    run(CommandIds.compactSession, async () => {
      const instructions = await vscode.window.showInputBox({
        title: 'Summarize earlier messages',
        prompt:
          'The turns before the latest one are summarized; the summary is sent in their place and they stay in the chat (Undo in the banner). What should it keep? (optional)',
        placeHolder: 'focus on the API decisions',
        ignoreFocusOut: true,
      });
      if (instructions === undefined) return;
      await view.reveal(false);
      const done = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'deskmate is summarizing earlier messages…' },
        () => controller.compactSession(instructions.trim() || undefined),
      );
      void vscode.window.showInformationMessage(`deskmate: ${done.messageCount} earlier messages summarized.`);
    }),

    run(CommandIds.exportSession, async () => {
      const exported = await controller.exportSession();
      const folder = parts.workspace.folderUri();
      const name = exportFileName(exported.title, exported.sessionId);
      const target = await vscode.window.showSaveDialog({
        title: 'Export the deskmate session',
        defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined,
        filters: { Markdown: ['md'] },
        saveLabel: 'Export',
      });
      if (!target) return;
      await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(exported.markdown));
      await vscode.window.showTextDocument(target);
    }),

    run(CommandIds.stop, () => controller.stop()),

    run(CommandIds.setApiKey, async () => {
      const key = await vscode.window.showInputBox({
        title: 'deskmate API key',
        prompt: 'Stored in VS Code SecretStorage (never in settings.json) and passed to the daemon.',
        password: true,
        ignoreFocusOut: true,
      });
      if (!key?.trim()) return;
      await context.secrets.store(API_KEY_SECRET, key.trim());
      void vscode.window.showInformationMessage('deskmate: API key saved; the next question uses it.');
    }),

    run(CommandIds.clearApiKey, async () => {
      await context.secrets.delete(API_KEY_SECRET);
      void vscode.window.showInformationMessage('deskmate: API key removed.');
    }),

    run(CommandIds.sessions, () => showSessions(controller)),
    run(CommandIds.searchAllSessions, () => showSessions(controller, true)),

    run(CommandIds.restartDaemon, () => daemon.restart()),
    run(CommandIds.chooseModel, () => controller.pickModel()),
    run(CommandIds.showLog, () => output.show()),
  ];
}

function selectionContext(editor: vscode.TextEditor): AskContext {
  const document = editor.document;
  const selection = editor.selection;
  const range = selection.isEmpty
    ? new vscode.Range(0, 0, document.lineCount, 0)
    : new vscode.Range(selection.start, selection.end);
  const full = document.validateRange(range);
  return {
    uri: document.uri.toString(),
    languageId: document.languageId,
    range: {
      start: { line: full.start.line, character: full.start.character },
      end: { line: full.end.line, character: full.end.character },
    },
    text: document.getText(full),
  };
}

interface SessionItem extends vscode.QuickPickItem {
  session: SessionSummary;
}

async function pickSession(controller: ChatController, title: string): Promise<SessionSummary | undefined> {
  const sessions = await controller.listSessions();
  if (sessions.length === 0) {
    void vscode.window.showInformationMessage('deskmate: this workspace has no stored sessions yet.');
    return undefined;
  }
  const items: SessionItem[] = sessions.map((session) => ({
    label: session.title || session.sessionId,
    description: `${session.messageCount} messages${session.active ? ' · current' : ''}`,
    detail: `${session.sessionId} · last used ${formatTime(session.updatedAt)}${madeElsewhere(session, controller.workspaceUri())}`,
    session,
  }));
  const picked = await vscode.window.showQuickPick(items, { title, matchOnDetail: true, placeHolder: 'Pick a session' });
  return picked?.session;
}

interface TrashItem extends vscode.QuickPickItem {
  session?: TrashedSession;
}

/** The trash: pick a session to restore or delete for good, or empty it (both confirmed). */
async function showTrash(controller: ChatController): Promise<void> {
  const trashed = await controller.listTrash();
  if (trashed.length === 0) {
    void vscode.window.showInformationMessage('deskmate: the trash is empty.');
    return;
  }
  const items: TrashItem[] = trashed.map((session) => ({
    label: session.title || session.sessionId,
    description: `${session.messageCount} messages · deleted ${formatTime(session.deletedAt)}`,
    detail: `${session.sessionId} · purged after ${session.purgeAfter ? formatTime(session.purgeAfter) : '?'}`,
    session,
  }));
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: '$(trash) Empty the trash', description: `${trashed.length} sessions, permanently` });
  const picked = await vscode.window.showQuickPick(items, {
    title: 'deskmate: Trash',
    placeHolder: 'Pick a session to restore or delete permanently',
    matchOnDetail: true,
  });
  if (!picked) return;
  const session = picked.session;
  if (!session) {
    const sessions = trashed.length === 1 ? '1 session' : `${trashed.length} sessions`;
    const choice = await vscode.window.showWarningMessage(
      `Delete the ${sessions} in the trash permanently?`,
      { modal: true, detail: 'This cannot be undone.' },
      'Delete Permanently',
    );
    if (choice !== 'Delete Permanently') return;
    for (const each of trashed) await controller.deleteSession(each.sessionId, true);
    void vscode.window.showInformationMessage(`deskmate: deleted ${sessions} permanently.`);
    return;
  }
  const name = session.title || session.sessionId;
  const action = await vscode.window.showQuickPick(['Restore', 'Delete Permanently'], { title: `Session "${name}"` });
  if (action === 'Restore') {
    const restored = await controller.restoreSession(session.sessionId);
    void vscode.window.showInformationMessage(`deskmate: restored "${name}" (${restored.messageCount} messages).`);
  } else if (action === 'Delete Permanently') {
    const choice = await vscode.window.showWarningMessage(
      `Delete the session "${name}" permanently?`,
      { modal: true, detail: 'This cannot be undone.' },
      'Delete Permanently',
    );
    if (choice !== 'Delete Permanently') return;
    await controller.deleteSession(session.sessionId, true);
    void vscode.window.showInformationMessage(`deskmate: deleted "${name}" permanently.`);
  }
}

function formatTime(iso: string): string {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toLocaleString();
}
