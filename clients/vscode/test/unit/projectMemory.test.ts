import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DaemonPort } from '../../src/chatController';
import { DeskmateError } from '../../src/errors';
import { type MemoryList, memoryRows, ProjectMemory } from '../../src/projectMemory';

const FOLDER = 'file:///work/project';

/** A daemon holding one project's memories, as deskmate.remember / listMemories / forget do. */
class MemoryDaemon implements DaemonPort {
  state = 'running' as const;
  calls: { command: string; args: Record<string, unknown> }[] = [];
  list: MemoryList = { workspaceUri: FOLDER, project: 'project-1a2b3c4d', memories: [], instructionFiles: [], refusedFiles: [] };

  async execute<T>(command: string, args: object = {}): Promise<T> {
    const record = args as Record<string, unknown>;
    this.calls.push({ command, args: record });
    if (command === 'deskmate.remember') {
      const memory = { memoryId: `m${this.list.memories.length + 1}`, text: String(record.text), createdAt: '2026-12-06T10:00:00.000Z' };
      this.list.memories.push(memory);
      return { ...memory, count: this.list.memories.length } as T;
    }
    if (command === 'deskmate.listMemories') return structuredClone(this.list) as T;
    if (command === 'deskmate.forget') {
      const before = this.list.memories.length;
      this.list.memories = this.list.memories.filter((m) => m.memoryId !== record.memoryId);
      if (this.list.memories.length === before) throw new DeskmateError(`There is no memory with id '${record.memoryId}' in this project.`);
      return { memoryId: record.memoryId, forgotten: true } as T;
    }
    throw new Error(`unexpected ${command}`);
  }
}

describe('project memory', () => {
  it('remembers, lists and forgets in the folder the chat is about', async () => {
    const daemon = new MemoryDaemon();
    const memory = new ProjectMemory(daemon, () => FOLDER);
    const added = await memory.remember('Use pytest');
    assert.equal(added.count, 1);
    assert.deepEqual(daemon.calls[0], { command: 'deskmate.remember', args: { text: 'Use pytest', workspaceUri: FOLDER } });
    assert.deepEqual((await memory.list()).memories.map((m) => m.text), ['Use pytest']);
    await memory.forget(added.memoryId);
    assert.deepEqual(daemon.calls.at(-1), { command: 'deskmate.forget', args: { memoryId: 'm1', workspaceUri: FOLDER } });
    assert.deepEqual((await memory.list()).memories, []);
    await assert.rejects(memory.forget('m1'), /no memory with id 'm1'/);
  });

  it('sends no workspaceUri without a folder (the daemon then says to open one)', async () => {
    const daemon = new MemoryDaemon();
    await new ProjectMemory(daemon, () => undefined).list();
    assert.deepEqual(daemon.calls[0].args, {});
  });

  it('shows the memories, then the instruction files read and refused, each saying what it is', () => {
    const now = new Date('2026-12-06T10:30:00.000Z');
    const rows = memoryRows(
      {
        workspaceUri: FOLDER,
        project: 'p',
        memories: [
          { memoryId: 'a', text: 'The API is\nunder /v2', createdAt: '2026-12-06T10:25:00.000Z' },
          { memoryId: 'b', text: 'Tabs', createdAt: '2026-12-06T08:30:00.000Z' },
        ],
        instructionFiles: [
          { uri: `${FOLDER}/AGENTS.md`, path: '/work/project/AGENTS.md', characters: 10, truncated: false },
          { uri: `${FOLDER}/.deskmate/memory.md`, path: '/work/project/.deskmate/memory.md', characters: 40_000, truncated: true },
        ],
        refusedFiles: [{ path: '/work/project/AGENTS.md', reason: 'it links outside every workspace folder' }],
      },
      now,
    );
    assert.deepEqual(
      rows.map((row) => [row.kind, row.label, row.description]),
      [
        ['memory', 'The API is under /v2', '5 min ago'],
        ['memory', 'Tabs', '2 h ago'],
        ['file', 'AGENTS.md', 'instructions'],
        ['file', '.deskmate/memory.md', 'instructions · cut at 32,000 characters'],
        ['refused', 'AGENTS.md', 'not read'],
      ],
    );
    assert.equal(rows[0].memoryId, 'a');
    assert.match(rows[0].tooltip, /every question in this project/);
    assert.equal(rows[2].uri, `${FOLDER}/AGENTS.md`);
    assert.match(rows[4].tooltip, /outside every workspace folder/);
  });

  it('says how to start when there is nothing', () => {
    const rows = memoryRows({ workspaceUri: FOLDER, project: 'p', memories: [], instructionFiles: [], refusedFiles: [] });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].kind, 'empty');
    assert.match(rows[0].tooltip, /AGENTS\.md/);
  });
});
