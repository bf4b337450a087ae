// Which workspace folder the chat is about, and the editor code is inserted into.

import * as vscode from 'vscode';

/**
 * The chat follows the folder of the file being edited (the first folder when
 * no editor is active). Focusing the chat view does not change it.
 */
export class WorkspaceTracker implements vscode.Disposable {
  private lastEditor: vscode.TextEditor | undefined = vscode.window.activeTextEditor;
  private current: vscode.WorkspaceFolder | undefined = this.compute();
  private readonly emitter = new vscode.EventEmitter<vscode.WorkspaceFolder | undefined>();
  private readonly disposables: vscode.Disposable[];

  readonly onDidChangeFolder = this.emitter.event;

  constructor() {
    this.disposables = [
      this.emitter,
      vscode.window.onDidChangeActiveTextEditor((editor) => {
        if (editor && editor.document.uri.scheme !== 'output') this.lastEditor = editor;
        this.update();
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.update()),
    ];
  }

  folder(): vscode.WorkspaceFolder | undefined {
    return this.current;
  }

  folderUri(): vscode.Uri | undefined {
    return this.current?.uri;
  }

  /** Replaces each selection of the editor last used with `text`. */
  async insertAtCursor(text: string): Promise<void> {
    const editor = this.liveEditor();
    if (!editor) {
      void vscode.window.showInformationMessage('deskmate: open a file to insert the code into.');
      return;
    }
    const ok = await editor.edit((edit) => {
      for (const selection of editor.selections) edit.replace(selection, text);
    });
    if (!ok) {
      void vscode.window.showWarningMessage('deskmate: the code could not be inserted (is the file read-only?).');
      return;
    }
    await vscode.window.showTextDocument(editor.document, { viewColumn: editor.viewColumn, preserveFocus: false });
  }

  dispose(): void {
    for (const disposable of this.disposables) disposable.dispose();
  }

  private liveEditor(): vscode.TextEditor | undefined {
    const active = vscode.window.activeTextEditor;
    if (active) return active;
    const last = this.lastEditor;
    if (last && vscode.window.visibleTextEditors.includes(last)) return last;
    return vscode.window.visibleTextEditors[0];
  }

  private compute(): vscode.WorkspaceFolder | undefined {
    const uri = (vscode.window.activeTextEditor ?? this.lastEditor)?.document.uri;
    const byEditor = uri ? vscode.workspace.getWorkspaceFolder(uri) : undefined;
    if (byEditor) return byEditor;
    // Keep the folder while an editor outside every folder is active.
    if (this.current && vscode.workspace.workspaceFolders?.includes(this.current)) return this.current;
    return vscode.workspace.workspaceFolders?.[0];
  }

  private update(): void {
    const next = this.compute();
    if (next?.uri.toString() !== this.current?.uri.toString()) {
      this.current = next;
      this.emitter.fire(next);
    }
  }
}
