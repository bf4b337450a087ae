// The Memory view beside the chat: the project's memories (add, forget) and the instruction
// files the daemon reads (click to open). A thin view over projectMemory.ts.

import * as vscode from 'vscode';
import type { DaemonPort } from './chatController';
import { toDeskmateError } from './errors';
import { type MemoryRow, memoryRows, ProjectMemory } from './projectMemory';

export const MEMORY_VIEW_ID = 'deskmate.memoryView';

export const MemoryCommandIds = {
  add: 'deskmate.memory.add',
  forget: 'deskmate.memory.forget',
  refresh: 'deskmate.memory.refresh',
} as const;

class MemoryTree implements vscode.TreeDataProvider<MemoryRow> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  failure: string | undefined;

  constructor(private readonly memory: ProjectMemory) {}

  refresh(): void {
    this.changed.fire();
  }

  getTreeItem(row: MemoryRow): vscode.TreeItem {
    const item = new vscode.TreeItem(row.label);
    item.description = row.description;
    item.tooltip = row.tooltip;
    item.contextValue = `deskmate.${row.kind}`;
    item.iconPath = new vscode.ThemeIcon(
      { memory: 'lightbulb', file: 'book', refused: 'warning', empty: 'info' }[row.kind],
    );
    if (row.kind === 'file' && row.uri) {
      item.command = { command: 'vscode.open', title: 'Open', arguments: [vscode.Uri.parse(row.uri)] };
    }
    return item;
  }

  async getChildren(row?: MemoryRow): Promise<MemoryRow[]> {
    if (row) return [];
    try {
      const rows = memoryRows(await this.memory.list());
      this.failure = undefined;
      return rows;
    } catch (error) {
      this.failure = toDeskmateError(error).message;
      return [{ kind: 'refused', label: 'Memory unavailable', tooltip: this.failure, description: this.failure }];
    }
  }

  dispose(): void {
    this.changed.dispose();
  }
}

export function registerMemoryView(
  daemon: DaemonPort,
  workspaceUri: () => string | undefined,
  onChanged: (listener: () => void) => vscode.Disposable[],
): vscode.Disposable[] {
  const memory = new ProjectMemory(daemon, workspaceUri);
  const tree = new MemoryTree(memory);
  const view = vscode.window.createTreeView(MEMORY_VIEW_ID, { treeDataProvider: tree, showCollapseAll: false });
  view.description = 'sent with every question';
  const run = (id: string, action: (...args: never[]) => Promise<void>) =>
    vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        await action(...args);
      } catch (error) {
        void vscode.window.showErrorMessage(toDeskmateError(error).message);
      } finally {
        tree.refresh();
      }
    });
  return [
    tree,
    view,
    ...onChanged(() => tree.refresh()),
    run(MemoryCommandIds.add, async () => {
      const text = await vscode.window.showInputBox({
        title: 'Remember in this project',
        prompt: 'Sent with every question in this project, in every session (e.g. "We use pytest, never unittest").',
        ignoreFocusOut: true,
      });
      if (!text?.trim()) return;
      const added = await memory.remember(text.trim());
      void vscode.window.showInformationMessage(
        `deskmate: remembered; every question in this project is sent ${added.count === 1 ? 'it' : `its ${added.count} memories`}.`,
      );
    }),
    run(MemoryCommandIds.forget, async (row: MemoryRow) => {
      if (!row?.memoryId) return;
      await memory.forget(row.memoryId);
      void vscode.window.showInformationMessage(`deskmate: forgot "${row.label}".`);
    }),
    run(MemoryCommandIds.refresh, async () => undefined),
  ];
}
