/** The SecretStorage key of the API key entered in VS Code. */
export const API_KEY_SECRET = 'deskmate.apiKey';
