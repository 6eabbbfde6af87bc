// Placeholder until the StorePolicy status writer lands (issue 3).
export class StorePolicyStatusWriter {
  static async start(_source: unknown): Promise<{ close(): Promise<void> }> {
    throw new Error('POLICY_NAME is not supported in this build');
  }
}
