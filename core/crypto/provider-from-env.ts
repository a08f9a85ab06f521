// Chooses the key provider from configuration: AWS KMS when KMS_KEY_ID is set,
// else the local master key (MINIMCP_MASTER_KEY, or a key file).
import type { KeyProvider } from './envelope.js';
import { createLocalKeyProvider } from './local-provider.js';

/** Where the local stack keeps its master key unless MINIMCP_MASTER_KEY(_FILE) says otherwise. */
export const DEFAULT_MASTER_KEY_FILE = '.minimcp/master.key';

export interface KeyProviderEnv {
  KMS_KEY_ID?: string;
  AWS_ENDPOINT_URL_KMS?: string;
  MINIMCP_MASTER_KEY?: string;
  MINIMCP_MASTER_KEY_FILE?: string;
  AWS_REGION?: string;
}

export async function createKeyProviderFromEnv(env: KeyProviderEnv): Promise<KeyProvider> {
  if (env.KMS_KEY_ID) {
    // Loaded only here: the local stack, and a Lambda that never decrypts, skip the KMS client.
    const [{ KMSClient }, { createKmsKeyProvider }] = await Promise.all([
      import('@aws-sdk/client-kms'),
      import('./kms-provider.js'),
    ]);
    const kms = new KMSClient({
      ...(env.AWS_REGION ? { region: env.AWS_REGION } : {}),
      ...(env.AWS_ENDPOINT_URL_KMS ? { endpoint: env.AWS_ENDPOINT_URL_KMS } : {}),
    });
    return createKmsKeyProvider({ kms, keyId: env.KMS_KEY_ID });
  }
  if (env.MINIMCP_MASTER_KEY) {
    return createLocalKeyProvider({
      masterKeyBase64: env.MINIMCP_MASTER_KEY,
      ...(env.MINIMCP_MASTER_KEY_FILE ? { keyFile: env.MINIMCP_MASTER_KEY_FILE } : {}),
    });
  }
  return createLocalKeyProvider({
    keyFile: env.MINIMCP_MASTER_KEY_FILE || DEFAULT_MASTER_KEY_FILE,
  });
}
