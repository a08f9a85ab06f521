// The mailer: through Amazon SES (moto: the real SDK, a real HTTP server) and
// into the local outbox folder; the message text (it holds a token) never
// reaches a log line.
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SESClient, VerifyEmailIdentityCommand } from '@aws-sdk/client-ses';
import { ApiConfigSchema, ConfigError, parseConfig } from '../../../../core/config.js';
import { createLogger } from '../../../../core/logger.js';
import { createMailer, createSesMailer } from '../../../../lambdas/control/mailer.js';
import { MOTO_CLIENT_CONFIG, startMoto, type MotoServer } from '../../../support/moto.js';

const SECRET_TEXT = 'token mmv_do-not-log-this-0123456789';

function capturedLogger() {
  const lines: string[] = [];
  const logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
  return { logger, lines };
}

function config(env: Record<string, string>) {
  return parseConfig(ApiConfigSchema, { DATABASE_URL: 'postgres://unused/db', ...env });
}

interface MotoSesMessage {
  id: string;
  source: string;
  subject: string;
  body: string;
  destinations: { ToAddresses: string[] };
}

async function sesMessages(moto: MotoServer): Promise<MotoSesMessage[]> {
  const response = await fetch(`${moto.endpoint}/moto-api/data.json`);
  const data = (await response.json()) as { ses?: { Message?: MotoSesMessage[] } };
  return data.ses?.Message ?? [];
}

describe('the SES mailer', () => {
  let moto: MotoServer;
  let ses: SESClient;

  beforeAll(async () => {
    moto = await startMoto();
    ses = new SESClient({ ...MOTO_CLIENT_CONFIG, endpoint: moto.endpoint });
    await ses.send(new VerifyEmailIdentityCommand({ EmailAddress: 'noreply@minimcp.test' }));
  }, 60_000);
  afterAll(async () => {
    ses?.destroy();
    await moto?.stop();
  });

  it('sends a text message from the configured sender, and logs its id but not its text', async () => {
    const { logger, lines } = capturedLogger();
    const mailer = createSesMailer({ ses, from: 'noreply@minimcp.test', logger });

    const sent = await mailer.send({
      to: 'ada@example.test',
      subject: 'Confirm your email address',
      text: `Hello Ada, ${SECRET_TEXT}`,
    });

    const message = (await sesMessages(moto)).find((m) => m.id === sent.id);
    expect(message).toMatchObject({
      source: 'noreply@minimcp.test',
      subject: 'Confirm your email address',
      body: `Hello Ada, ${SECRET_TEXT}`,
      destinations: { ToAddresses: ['ada@example.test'] },
    });
    expect(lines.join('')).toContain(sent.id);
    expect(lines.join('')).not.toContain('mmv_');
  });

  it('fails when SES refuses an unverified sender', async () => {
    const mailer = createSesMailer({
      ses,
      from: 'stranger@elsewhere.test',
      logger: capturedLogger().logger,
    });
    await expect(
      mailer.send({ to: 'ada@example.test', subject: 'x', text: 'y' }),
    ).rejects.toMatchObject({ name: 'MessageRejected' });
  });

  it('is what MINIMCP_MAILER=ses builds, with the endpoint and region of the configuration', async () => {
    process.env.AWS_ACCESS_KEY_ID ??= 'testing';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'testing';
    const mailer = createMailer(
      config({
        MINIMCP_MAILER: 'ses',
        MINIMCP_MAIL_FROM: 'noreply@minimcp.test',
        AWS_REGION: MOTO_CLIENT_CONFIG.region,
        AWS_ENDPOINT_URL_SES: moto.endpoint,
      }),
      capturedLogger().logger,
    );
    expect(mailer.kind).toBe('ses');
    const sent = await mailer.send({ to: 'bob@example.test', subject: 'Hi', text: 'there' });
    expect((await sesMessages(moto)).map((m) => m.id)).toContain(sent.id);
  });

  it('refuses MINIMCP_MAILER=ses without a sender address', () => {
    expect(() => createMailer(config({ MINIMCP_MAILER: 'ses' }), capturedLogger().logger)).toThrow(
      ConfigError,
    );
  });
});

describe('the outbox mailer', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'minimcp-outbox-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('writes each message as a JSON file only its owner can read, and logs where without the text', async () => {
    const { logger, lines } = capturedLogger();
    const mailer = createMailer(config({ MINIMCP_DATA_DIR: dataDir }), logger);
    expect(mailer.kind).toBe('outbox');

    const first = await mailer.send({ to: 'ada@example.test', subject: 'One', text: SECRET_TEXT });
    const second = await mailer.send({ to: 'bob@example.test', subject: 'Two', text: 'plain' });

    const files = (await readdir(path.join(dataDir, 'outbox'))).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d-]+Z-${first.id}\\.json$`));
    expect(files[1]).toContain(second.id);
    const file = path.join(dataDir, 'outbox', files[0]!);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({
      id: first.id,
      from: 'minimcp@localhost',
      to: 'ada@example.test',
      subject: 'One',
      text: SECRET_TEXT,
    });
    const log = lines.join('');
    expect(log).toContain(first.id);
    expect(log).toContain('mail written to outbox');
    expect(log).not.toContain('mmv_');
  });

  it('drops mail with MINIMCP_MAILER=none, saying so in the log', async () => {
    const { logger, lines } = capturedLogger();
    const mailer = createMailer(
      config({ MINIMCP_MAILER: 'none', MINIMCP_DATA_DIR: dataDir }),
      logger,
    );
    await mailer.send({ to: 'ada@example.test', subject: 'Gone', text: SECRET_TEXT });
    expect(lines.join('')).toContain('mail dropped');
    expect(lines.join('')).not.toContain('mmv_');
  });
});
