// Account mail (verification links) behind one interface: Amazon SES on AWS,
// an outbox folder of JSON files locally, or nowhere. The message text can
// hold a single-use token, so no mailer logs it; they log the mail's id only.
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SESClient } from '@aws-sdk/client-ses';
import type { ApiConfig } from '../../core/config.js';
import { ConfigError } from '../../core/config.js';
import type { Logger } from '../../core/logger.js';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  /** Where mail goes, for logs and the README: 'ses', 'outbox' or 'none'. */
  readonly kind: 'ses' | 'outbox' | 'none';
  /** Resolves with the mail's id (SES MessageId, or the outbox file's id) once handed over. */
  send(message: MailMessage): Promise<{ id: string }>;
}

export function createSesMailer(options: { ses: SESClient; from: string; logger: Logger }): Mailer {
  return {
    kind: 'ses',
    async send(message) {
      const { SendEmailCommand } = await import('@aws-sdk/client-ses');
      const answer = await options.ses.send(
        new SendEmailCommand({
          Source: options.from,
          Destination: { ToAddresses: [message.to] },
          Message: {
            Subject: { Data: message.subject, Charset: 'UTF-8' },
            Body: { Text: { Data: message.text, Charset: 'UTF-8' } },
          },
        }),
      );
      const id = answer.MessageId ?? 'unknown';
      options.logger.info({ mailId: id, subject: message.subject }, 'mail sent through SES');
      return { id };
    },
  };
}

/** The file name: sortable by time, unique by id, no characters a file system refuses. */
function outboxFileName(at: Date, id: string): string {
  return `${at.toISOString().replace(/[:.]/g, '-')}-${id}.json`;
}

/** Local stack: each message is a JSON file (mode 0600: it holds a token) under `dir`. */
export function createOutboxMailer(options: { dir: string; from: string; logger: Logger }): Mailer {
  return {
    kind: 'outbox',
    async send(message) {
      const id = randomUUID();
      const at = new Date();
      await mkdir(options.dir, { recursive: true, mode: 0o700 });
      const file = path.join(options.dir, outboxFileName(at, id));
      const body = { id, from: options.from, ...message, created_at: at.toISOString() };
      await writeFile(file, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      options.logger.info({ mailId: id, subject: message.subject, file }, 'mail written to outbox');
      return { id };
    },
  };
}

/** Mail switched off: the message is dropped, and the log says so (without its text). */
export function createNoMailer(logger: Logger): Mailer {
  return {
    kind: 'none',
    send(message) {
      const id = randomUUID();
      logger.warn({ mailId: id, subject: message.subject }, 'mail dropped (MINIMCP_MAILER=none)');
      return Promise.resolve({ id });
    },
  };
}

const LOCAL_FROM = 'minimcp@localhost';

/** The mailer the configuration names; the SES client is loaded only when it is used. */
export function createMailer(config: ApiConfig, logger: Logger): Mailer {
  switch (config.MINIMCP_MAILER) {
    case 'none':
      return createNoMailer(logger);
    case 'outbox':
      return createOutboxMailer({
        dir: path.join(config.MINIMCP_DATA_DIR, 'outbox'),
        from: config.MINIMCP_MAIL_FROM ?? LOCAL_FROM,
        logger,
      });
    case 'ses': {
      const from = config.MINIMCP_MAIL_FROM;
      if (!from)
        throw new ConfigError('invalid configuration: MINIMCP_MAILER=ses needs MINIMCP_MAIL_FROM', [
          'MINIMCP_MAIL_FROM: required with MINIMCP_MAILER=ses (not set)',
        ]);
      return lazySesMailer(config, from, logger);
    }
  }
}

/** An SES mailer whose client (and SDK) is built at the first send. */
function lazySesMailer(config: ApiConfig, from: string, logger: Logger): Mailer {
  let mailer: Promise<Mailer> | undefined;
  const get = () =>
    (mailer ??= import('@aws-sdk/client-ses').then(({ SESClient }) => {
      const ses = new SESClient({
        ...(config.AWS_REGION ? { region: config.AWS_REGION } : {}),
        ...(config.AWS_ENDPOINT_URL_SES ? { endpoint: config.AWS_ENDPOINT_URL_SES } : {}),
      });
      return createSesMailer({ ses, from, logger });
    }));
  return { kind: 'ses', send: async (message) => (await get()).send(message) };
}
