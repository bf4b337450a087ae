// The interpreter chosen in the Python extension (ms-python.python), through
// its public API. Only the few members used here are typed.

import * as vscode from 'vscode';

interface PythonEnvironmentsApi {
  getActiveEnvironmentPath(resource?: vscode.Uri): { id: string; path: string };
  resolveEnvironment(
    environment: { id: string; path: string } | string,
  ): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
  onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
}

interface PythonExtensionApi {
  environments?: PythonEnvironmentsApi;
}

const PYTHON_EXTENSION_ID = 'ms-python.python';

async function pythonApi(output: vscode.LogOutputChannel): Promise<PythonEnvironmentsApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonExtensionApi>(PYTHON_EXTENSION_ID);
  if (!extension) return undefined;
  try {
    const api = extension.isActive ? extension.exports : await extension.activate();
    return api?.environments;
  } catch (error) {
    output.warn(`The Python extension did not activate: ${String(error)}`);
    return undefined;
  }
}

/** The selected interpreter's executable, or undefined without the Python extension. */
export async function pythonInterpreter(
  resource: vscode.Uri | undefined,
  output: vscode.LogOutputChannel,
): Promise<string | undefined> {
  const environments = await pythonApi(output);
  if (!environments) return undefined;
  try {
    const active = environments.getActiveEnvironmentPath(resource);
    const resolved = await environments.resolveEnvironment(active);
    return resolved?.executable.uri?.fsPath ?? active.path;
  } catch (error) {
    output.warn(`Could not read the selected Python interpreter: ${String(error)}`);
    return undefined;
  }
}

/** Calls `onChange` when the user picks another interpreter. */
export async function watchPythonInterpreter(
  context: vscode.ExtensionContext,
  output: vscode.LogOutputChannel,
  onChange: () => void,
): Promise<void> {
  const environments = await pythonApi(output);
  if (environments) context.subscriptions.push(environments.onDidChangeActiveEnvironmentPath(() => onChange()));
}
