// The project's memory as the Memory view shows it: deskmate.remember / listMemories / forget.
// No `vscode` import here, so the unit tests drive it with a fake daemon; memoryView.ts draws it.

import type { DaemonPort } from './chatController';

/** One of `deskmate.listMemories`'s memories. */
export interface Memory {
  memoryId: string;
  text: string;
  createdAt: string;
}

/** An instruction file the daemon read (AGENTS.md, .deskmate/memory.md). */
export interface InstructionFile {
  uri: string;
  path: string;
  characters: number;
  truncated: boolean;
}

/** `deskmate.listMemories`'s result. */
export interface MemoryList {
  workspaceUri: string;
  project: string;
  memories: Memory[];
  instructionFiles: InstructionFile[];
  refusedFiles: { path: string; reason: string }[];
}

export const MemoryCommands = {
  remember: 'deskmate.remember',
  listMemories: 'deskmate.listMemories',
  forget: 'deskmate.forget',
} as const;

/** A row of the Memory view, described without VS Code's types. */
export interface MemoryRow {
  kind: 'memory' | 'file' | 'refused' | 'empty';
  label: string;
  description?: string;
  tooltip: string;
  /** The memory's id (kind `memory`). */
  memoryId?: string;
  /** The file to open (kind `file`). */
  uri?: string;
}

/** The rows for a listing: the memories, oldest first, then the instruction files read (and refused). */
export function memoryRows(list: MemoryList, now: Date = new Date()): MemoryRow[] {
  const rows: MemoryRow[] = list.memories.map((memory) => ({
    kind: 'memory',
    label: memory.text.replace(/\s+/g, ' '),
    description: added(memory.createdAt, now),
    tooltip: `${memory.text}\n\nSent with every question in this project (remembered ${new Date(memory.createdAt).toLocaleString()}).`,
    memoryId: memory.memoryId,
  }));
  for (const file of list.instructionFiles) {
    rows.push({
      kind: 'file',
      label: baseName(file.path),
      description: file.truncated ? 'instructions · cut at 32,000 characters' : 'instructions',
      tooltip: `${file.path}\n\nRead at every question and sent as the project's instructions.`,
      uri: file.uri,
    });
  }
  for (const file of list.refusedFiles) {
    rows.push({ kind: 'refused', label: baseName(file.path), description: 'not read', tooltip: file.reason });
  }
  if (rows.length === 0) {
    rows.push({
      kind: 'empty',
      label: 'No memories yet',
      description: 'add facts every question should know',
      tooltip: 'Add a memory (+), or write an AGENTS.md at the project root: both go with every question in this project.',
    });
  }
  return rows;
}

function baseName(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts.at(-2) === '.deskmate' ? `.deskmate/${parts.at(-1)}` : (parts.at(-1) ?? path);
}

function added(iso: string, now: Date): string {
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return iso;
  const minutes = Math.round((now.getTime() - time.getTime()) / 60_000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 24 * 60) return `${Math.round(minutes / 60)} h ago`;
  return time.toLocaleDateString();
}

/** The daemon's project memory for the workspace the chat is about. */
export class ProjectMemory {
  constructor(
    private readonly daemon: DaemonPort,
    private readonly workspaceUri: () => string | undefined,
  ) {}

  private where(): { workspaceUri?: string } {
    const uri = this.workspaceUri();
    return uri ? { workspaceUri: uri } : {};
  }

  list(): Promise<MemoryList> {
    return this.daemon.execute<MemoryList>(MemoryCommands.listMemories, this.where());
  }

  async remember(text: string): Promise<Memory & { count: number }> {
    return this.daemon.execute(MemoryCommands.remember, { text, ...this.where() });
  }

  async forget(memoryId: string): Promise<void> {
    await this.daemon.execute(MemoryCommands.forget, { memoryId, ...this.where() });
  }
}
