// Turning what a request threw into one sentence for the user.

import { ErrorCodes } from './protocol';

/** An error whose message is already written for the user. */
export class DeskmateError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = 'DeskmateError';
  }
}

/**
 * The daemon writes RequestFailed messages for the user, so they are shown as
 * they are; anything else (a crash, a broken pipe) gets a short prefix.
 */
export function toDeskmateError(error: unknown): DeskmateError {
  if (error instanceof DeskmateError) return error;
  const code = typeof (error as { code?: unknown })?.code === 'number' ? (error as { code: number }).code : undefined;
  const raw = error instanceof Error ? error.message : typeof error === 'string' ? error : String(error);
  if (code === ErrorCodes.requestCancelled) return new DeskmateError('The request was cancelled.', code);
  if (code === ErrorCodes.requestFailed || code === ErrorCodes.invalidParams) return new DeskmateError(raw, code);
  return new DeskmateError(`deskmate failed: ${raw || 'unknown error'}`, code);
}
