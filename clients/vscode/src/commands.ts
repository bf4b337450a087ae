// The palette commands. Their ids avoid the daemon's own `deskmate.*` command
// names, which vscode-languageclient registers as VS Code commands too.

import * as vscode from 'vscode';
import type { ChatController } from './chatController';
import type { ChatViewProvider } from './chatView';
import type { Daemon } from './daemon';
import { toDeskmateError } from './errors';
import { exportFileName } from './exportName';
import type { AskContext, SessionSummary } from './protocol';
import { API_KEY_SECRET } from './secrets';
import { showSessions } from './sessionSearch';
import type { WorkspaceTracker } from './workspace';

export const CommandIds = {
  openChat: 'deskmate.chat.open',
  askAboutSelection: 'deskmate.chat.askAboutSelection',
  newSession: 'deskmate.chat.newSession',
  switchSession: 'deskmate.chat.switchSession',
  deleteSession: 'deskmate.chat.deleteSession',
  exportSession: 'deskmate.chat.exportSession',
  stop: 'deskmate.chat.stop',
  setApiKey: 'deskmate.chat.setApiKey',
  clearApiKey: 'deskmate.chat.clearApiKey',
  restartDaemon: 'deskmate.chat.restartDaemon',
  showLog: 'deskmate.chat.showLog',
  sessions: 'deskmate.chat.sessions',
  searchAllSessions: 'deskmate.chat.searchAllSessions',
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
      const picked = await pickSession(controller, 'Delete session');
      if (!picked) return;
      const messages = picked.messageCount === 1 ? '1 message' : `${picked.messageCount} messages`;
      const choice = await vscode.window.showWarningMessage(
        `Delete the session "${picked.title || picked.sessionId}" and its ${messages}?`,
        { modal: true, detail: 'This cannot be undone.' },
        'Delete',
      );
      if (choice !== 'Delete') return;
      const deleted = await controller.deleteSession(picked.sessionId);
      if (!deleted) void vscode.window.showInformationMessage('deskmate: there was nothing to delete.');
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
    detail: `${session.sessionId} · last used ${formatTime(session.updatedAt)}`,
    session,
  }));
  const picked = await vscode.window.showQuickPick(items, { title, matchOnDetail: true, placeHolder: 'Pick a session' });
  return picked?.session;
}

function formatTime(iso: string): string {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toLocaleString();
}
