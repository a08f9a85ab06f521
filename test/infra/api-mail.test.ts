// Account mail on AWS: with the `mailFrom` context the API function sends
// through SES (env, ses:SendEmail on the sender's identities only, a private
// SES endpoint); without it, mail is switched off and no SES permission exists.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { parseDeploySettings } from '../../infra/stacks/settings.js';
import { logicalId, synthStack, type SynthesizedStack } from './synth-stack.js';

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

interface Statement {
  Action: string | string[];
  Resource?: unknown;
  Condition?: unknown;
}

function statements(resources: Resources): Statement[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy')
    .flatMap(
      (r) =>
        (r.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement,
    );
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('the mailFrom context setting', () => {
  it('is an email address, optional', () => {
    expect(parseDeploySettings({}).mailFrom).toBeUndefined();
    expect(parseDeploySettings({ mailFrom: 'noreply@example.com' }).mailFrom).toBe(
      'noreply@example.com',
    );
    expect(() => parseDeploySettings({ mailFrom: 'not-an-address' })).toThrow(/mailFrom/);
  });
});

describe('the API function with mailFrom set', () => {
  let s: SynthesizedStack;
  let resources: Resources;

  beforeAll(() => {
    s = synthStack({ mailFrom: 'noreply@mail.example.com' });
    resources = s.template.toJSON().Resources as Resources;
  });

  it('still passes the AWS Solutions checks', () => {
    expect(s.nagFindings).toEqual([]);
  });

  it('tells the function to send through SES from that address', () => {
    const fn = resources[logicalId(s.stack, s.stack.api.handler.function.node.defaultChild)]!;
    const env = (fn.Properties as { Environment: { Variables: Record<string, unknown> } })
      .Environment.Variables;
    expect(env).toMatchObject({
      MINIMCP_MAILER: 'ses',
      MINIMCP_MAIL_FROM: 'noreply@mail.example.com',
    });
  });

  it('allows ses:SendEmail on the sender’s address and domain identities only, from that address', () => {
    const ses = statements(resources).filter((st) =>
      actionsOf(st).some((a) => a.startsWith('ses:')),
    );
    expect(ses).toHaveLength(1);
    expect(actionsOf(ses[0]!)).toEqual(['ses:SendEmail']);
    const text = JSON.stringify(ses[0]!.Resource);
    expect(text).toContain(':identity/noreply@mail.example.com');
    expect(text).toContain(':identity/mail.example.com');
    expect(text).not.toContain('*');
    expect(ses[0]!.Condition).toEqual({
      StringEquals: { 'ses:FromAddress': 'noreply@mail.example.com' },
    });
  });

  it('reaches SES through a private interface endpoint', () => {
    const email = Object.values(resources).filter(
      (r) =>
        r.Type === 'AWS::EC2::VPCEndpoint' &&
        JSON.stringify(r.Properties?.ServiceName).includes('.email"'),
    );
    expect(email).toHaveLength(1);
    expect(email[0]!.Properties).toMatchObject({
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
    });
  });
});

describe('the API function without mailFrom', () => {
  let s: SynthesizedStack;

  beforeAll(() => {
    s = synthStack();
  });

  it('switches mail off and grants no SES action', () => {
    const resources = s.template.toJSON().Resources as Resources;
    const fn = resources[logicalId(s.stack, s.stack.api.handler.function.node.defaultChild)]!;
    const env = (fn.Properties as { Environment: { Variables: Record<string, unknown> } })
      .Environment.Variables;
    expect(env.MINIMCP_MAILER).toBe('none');
    expect(env.MINIMCP_MAIL_FROM).toBeUndefined();
    const ses = statements(resources).filter((st) =>
      actionsOf(st).some((a) => a.startsWith('ses:')),
    );
    expect(ses).toEqual([]);
  });
});
