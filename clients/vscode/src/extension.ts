// Entry point: wires the daemon, the chat controller, the chat view and the commands.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { ChatController, type ChatHost } from './chatController';
import { CHAT_VIEW_ID, ChatViewProvider } from './chatView';
import { registerCommands } from './commands';
import { Daemon } from './daemon';
import { pythonInterpreter, watchPythonInterpreter } from './python';
import { API_KEY_SECRET } from './secrets';
import { findOnPath, resolveServerCommand } from './serverCommand';
import { daemonSettings } from './settings';
import { WorkspaceTracker } from './workspace';

let daemon: Daemon | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('deskmate', { log: true });
  const workspace = new WorkspaceTracker();
  context.subscriptions.push(output, workspace);

  const readSettings = async () => {
    const config = vscode.workspace.getConfiguration('deskmate', workspace.folderUri());
    const apiKey = await context.secrets.get(API_KEY_SECRET);
    return daemonSettings((key) => {
      const seen = config.inspect(key);
      const explicit =
        seen?.globalValue !== undefined || seen?.workspaceValue !== undefined || seen?.workspaceFolderValue !== undefined;
      return { explicit, value: config.get(key) };
    }, apiKey);
  };

  daemon = new Daemon({
    output,
    settings: readSettings,
    resolveCommand: () =>
      resolveServerCommand({
        configured: vscode.workspace.getConfiguration('deskmate').get('serverCommand'),
        pythonInterpreter: () => pythonInterpreter(workspace.folder()?.uri, output),
        hasDeskmateModule: (python) => hasDeskmateModule(python),
        findOnPath: (name) => findOnPath(name),
        exists: (file) => fs.existsSync(file),
      }),
    reportFailure: (message) => {
      void vscode.window.showErrorMessage(message, 'Open Settings', 'Show Log').then((choice) => {
        if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'deskmate');
        if (choice === 'Show Log') output.show();
      });
    },
  });
  const theDaemon = daemon;
  context.subscriptions.push({ dispose: () => void theDaemon.dispose() });

  let view: ChatViewProvider | undefined;
  const host: ChatHost = {
    post: (message) => view?.post(message),
    workspaceUri: () => workspace.folder()?.uri.toString(),
    progress: async (origin, title, task, cancel) => {
      // "deskmate: Stop Answer" is offered in the palette only while an answer runs.
      await vscode.commands.executeCommand('setContext', 'deskmate.answering', true);
      try {
        if (origin === 'view') return await vscode.window.withProgress({ location: { viewId: CHAT_VIEW_ID } }, task);
        return await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title, cancellable: true },
          (_progress, token) => {
            token.onCancellationRequested(cancel);
            return task();
          },
        );
      } finally {
        await vscode.commands.executeCommand('setContext', 'deskmate.answering', false);
      }
    },
    showError: (message) => void vscode.window.showErrorMessage(message),
    copy: async (text) => {
      await vscode.env.clipboard.writeText(text);
    },
    insert: (text) => workspace.insertAtCursor(text),
    restartDaemon: () => theDaemon.restart(),
  };
  const controller = new ChatController(theDaemon, host);
  view = new ChatViewProvider(context.extensionUri, (message) => controller.handle(message), output);

  context.subscriptions.push(
    view,
    vscode.window.registerWebviewViewProvider(CHAT_VIEW_ID, view, { webviewOptions: { retainContextWhenHidden: true } }),
    theDaemon.onDidChangeState(({ state, message }) => controller.onDaemonState(state, message)),
    theDaemon.onAskDelta((delta) => controller.onAskDelta(delta)),
    workspace.onDidChangeFolder(() => void controller.refresh()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('deskmate.serverCommand')) void theDaemon.restart();
      else if (event.affectsConfiguration('deskmate')) void theDaemon.updateSettings();
    }),
    // A new or removed API key must reach the daemon; updateSettings restarts it.
    context.secrets.onDidChange((event) => {
      if (event.key === API_KEY_SECRET) void theDaemon.updateSettings();
    }),
    ...registerCommands(context, { controller, daemon: theDaemon, view, workspace, output }),
  );
  void watchPythonInterpreter(context, output, () => {
    const configured = vscode.workspace.getConfiguration('deskmate').get<unknown[]>('serverCommand');
    if (!configured || configured.length === 0) void theDaemon.restart();
  });

  void theDaemon.start();
}

export async function deactivate(): Promise<void> {
  await daemon?.stop();
  daemon = undefined;
}

function hasDeskmateModule(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(python, ['-c', 'import deskmate'], { timeout: 20_000 }, (error) => resolve(!error));
  });
}
