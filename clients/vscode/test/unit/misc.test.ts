import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeskmateError, toDeskmateError } from '../../src/errors';
import { exportFileName } from '../../src/exportName';
import { madeElsewhere } from '../../src/sessionOrigin';

describe('exportFileName', () => {
  it('uses the title, made safe for file systems', () => {
    assert.equal(exportFileName('Why is main.py slow?', 'p-1'), 'Why is main.py slow.md');
    assert.equal(exportFileName('a/b\\c:d*e', 'p-1'), 'a b c d e.md');
    assert.equal(exportFileName('', 'myproject-3fa2b1c9'), 'myproject-3fa2b1c9.md');
    assert.equal(exportFileName('', null), 'deskmate-session.md');
    assert.equal(exportFileName('???', null), 'deskmate-session.md');
    assert.ok(exportFileName('x'.repeat(500), null).length <= 83);
  });
});

describe('toDeskmateError', () => {
  it("shows the daemon's RequestFailed message as it is", () => {
    const error = Object.assign(new Error('Session "x" does not exist'), { code: -32803 });
    assert.equal(toDeskmateError(error).message, 'Session "x" does not exist');
  });
  it('names cancelled requests', () => {
    assert.equal(toDeskmateError(Object.assign(new Error('x'), { code: -32800 })).message, 'The request was cancelled.');
  });
  it('prefixes other failures', () => {
    assert.equal(toDeskmateError(new Error('pipe closed')).message, 'deskmate failed: pipe closed');
    assert.equal(toDeskmateError('boom').message, 'deskmate failed: boom');
  });
  it('keeps DeskmateErrors', () => {
    const error = new DeskmateError('already for the user');
    assert.equal(toDeskmateError(error), error);
  });
});

describe('madeElsewhere', () => {
  it('names the folder a session of the project was made in, when it is not this one', () => {
    const here = 'file:///home/me/app';
    assert.equal(madeElsewhere({ workspaceUri: 'file:///home/me/app/' }, here), '');
    assert.equal(madeElsewhere({ workspaceUri: 'file:///home/me/old%20app' }, here), ' · made in /home/me/old app');
    assert.equal(madeElsewhere({ workspaceUri: null }, here), '');
    assert.equal(madeElsewhere({ workspaceUri: 'file:///x' }, undefined), '');
  });
});
