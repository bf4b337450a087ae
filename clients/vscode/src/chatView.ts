// The chat's WebviewView in the side bar: its page, and the messages both ways.

import * as vscode from 'vscode';
import type { FromWebview, ToWebview } from './messages';
import { chatPageHtml } from './webviewHtml';

export const CHAT_VIEW_ID = 'deskmate.chatView';

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  /** The page posts "ready" once its script runs; messages before that would be lost. */
  private ready = false;
  private focusWhenReady = false;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly onMessage: (message: FromWebview) => Promise<void> | void,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.ready = false;
    const webview = view.webview;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    webview.options = { enableScripts: true, enableForms: false, localResourceRoots: [dist, media] };
    webview.html = chatPageHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css')).toString(),
    });
    this.disposables.push(
      webview.onDidReceiveMessage(async (message: FromWebview) => {
        try {
          await this.onMessage(message);
        } catch (error) {
          this.log.error(`chat view message ${message?.type}: ${String(error)}`);
        }
        if (message?.type === 'ready') {
          this.ready = true;
          if (this.focusWhenReady) this.post({ type: 'focusPrompt' });
          this.focusWhenReady = false;
        }
      }),
      view.onDidDispose(() => {
        if (this.view === view) {
          this.view = undefined;
          this.ready = false;
        }
      }),
    );
  }

  post(message: ToWebview): void {
    if (message.type === 'focusPrompt' && !this.ready) {
      this.focusWhenReady = true;
      return;
    }
    void this.view?.webview.postMessage(message);
  }

  get visible(): boolean {
    return this.view?.visible ?? false;
  }

  /** Opens the view (creating it if needed) and puts the cursor in the prompt. */
  async reveal(focusPrompt: boolean): Promise<void> {
    await vscode.commands.executeCommand(`${CHAT_VIEW_ID}.focus`);
    if (focusPrompt) this.post({ type: 'focusPrompt' });
  }

  dispose(): void {
    for (const disposable of this.disposables.splice(0)) disposable.dispose();
  }
}
