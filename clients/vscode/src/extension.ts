// Entry point: wires the daemon, the chat controller, the chat view and the commands.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { ChatController, type ChatHost } from './chatController';
import { CHAT_VIEW_ID, ChatViewProvider } from './chatView';
import { registerCommands } from './commands';
import { Daemon } from './daemon';
import { registerMemoryView } from './memoryView';
import { watchEditorContext, findFiles, pickFiles } from './editorContext';
import { pythonInterpreter, watchPythonInterpreter } from './python';
import { API_KEY_SECRET } from './secrets';
import { findOnPath, resolveServerCommand } from './serverCommand';
import { maskedLog } from './log';
import { SecretMask } from './redact';
import { daemonSettings, readSetting } from './settings';
import { WorkspaceTracker } from './workspace';

let daemon: Daemon | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const channel = vscode.window.createOutputChannel('deskmate', { log: true });
  // Every line, the daemon's and vscode-languageclient's included, has the secrets seen so far masked.
  const secrets = new SecretMask();
  const output = maskedLog(channel, (text) => secrets.mask(text));
  const workspace = new WorkspaceTracker();
  context.subscriptions.push(channel, workspace);

  const readSettings = async () => {
    const config = vscode.workspace.getConfiguration('deskmate', workspace.folderUri());
    const apiKey = await context.secrets.get(API_KEY_SECRET);
    const settings = daemonSettings((key) => readSetting(key, config.inspect(key)), apiKey);
    secrets.learn(settings);
    return settings;
  };
  // A machine setting: from the user's settings only, never the workspace's (see settings.ts).
  // VS Code 1.139 already drops machine settings from a workspace's settings.json;
  // reading the user value alone keeps that true whatever a VS Code version does.
  const serverCommand = () =>
    readSetting('serverCommand', vscode.workspace.getConfiguration('deskmate').inspect('serverCommand')).value;

  daemon = new Daemon({
    output,
    settings: readSettings,
    resolveCommand: () =>
      resolveServerCommand({
        configured: serverCommand(),
        pythonInterpreter: () => pythonInterpreter(workspace.folder()?.uri, output),
        trusted: vscode.workspace.isTrusted,
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
  let startedWith = JSON.stringify(serverCommand() ?? null);
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
    offerUndo: async (message) => (await vscode.window.showInformationMessage(message, 'Undo')) === 'Undo',
    copy: async (text) => {
      await vscode.env.clipboard.writeText(text);
    },
    insert: (text) => workspace.insertAtCursor(text),
    restartDaemon: () => theDaemon.restart(),
    findFiles,
    pickFiles,
    pickModel: async (models, current) => {
      const picked = await vscode.window.showQuickPick(
        models.map((id) => ({ label: id, description: id === current ? 'in use' : undefined })),
        { title: 'deskmate: Choose Model', placeHolder: `The model this workspace asks (now ${current})` },
      );
      return picked?.label;
    },
  };
  const controller = new ChatController(theDaemon, host);
  view = new ChatViewProvider(context.extensionUri, (message) => controller.handle(message), output);

  context.subscriptions.push(
    view,
    vscode.window.registerWebviewViewProvider(CHAT_VIEW_ID, view, { webviewOptions: { retainContextWhenHidden: true } }),
    theDaemon.onDidChangeState(({ state, message }) => controller.onDaemonState(state, message)),
    theDaemon.onAskDelta((delta) => controller.onAskDelta(delta)),
    theDaemon.onSessionChanged((change) => void controller.onSessionChanged(change)),
    workspace.onDidChangeFolder(() => void controller.refresh()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration('deskmate')) return;
      // Only another command line restarts the daemon (an edit that leaves it as
      // it was, e.g. in a workspace's settings, which do not count, does not):
      // every other setting reaches the running daemon, which keeps its sessions.
      const command = JSON.stringify(serverCommand() ?? null);
      if (command !== startedWith) {
        startedWith = command;
        void theDaemon.restart();
      } else void theDaemon.updateSettings();
    }),
    // A new or removed API key must reach the daemon: updateSettings sends it (or null).
    context.secrets.onDidChange((event) => {
      if (event.key === API_KEY_SECRET) void theDaemon.updateSettings();
    }),
    // Trusting the workspace allows its Python interpreter (serverCommand.ts). A
    // daemon that could not start tries again; a running one is left alone.
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      if (theDaemon.state === 'failed') void theDaemon.start();
    }),
    ...registerCommands(context, { controller, daemon: theDaemon, view, workspace, output }),
    ...registerMemoryView(theDaemon, host.workspaceUri, (refresh) => {
      const files = vscode.workspace.createFileSystemWatcher('**/{AGENTS.md,.deskmate/memory.md}');
      return [
        files,
        files.onDidChange(refresh),
        files.onDidCreate(refresh),
        files.onDidDelete(refresh),
        workspace.onDidChangeFolder(refresh),
        theDaemon.onDidChangeState(({ state }) => {
          if (state === 'running') refresh();
        }),
      ];
    }),
    watchEditorContext((editor) => controller.onEditorChanged(editor)),
  );
  void watchPythonInterpreter(context, output, () => {
    const configured = serverCommand() as { length?: number } | undefined;
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
