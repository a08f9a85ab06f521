// CDK context → deployment settings: defaults, `-c key=value` strings, and
// errors that name every bad setting.
import { describe, expect, it } from '@jest/globals';
import { parseDeploySettings } from '../../infra/stacks/settings.js';

describe('deployment settings from CDK context', () => {
  it('defaults to a small public deployment', () => {
    const settings = parseDeploySettings({});
    expect(settings).toMatchObject({
      stackName: 'MiniMcp',
      ssmPrefix: '/minimcp/MiniMcp',
      agentsPublic: true,
      natGateways: 0,
      clientCidrs: ['0.0.0.0/0'],
      portRangeStart: 3001,
      portRangeEnd: 3100,
      grpcPort: 50051,
      postgresVersion: 17,
      deletionProtection: true,
      logRetentionDays: 30,
      maintenanceSchedule: 'rate(1 minute)',
      corsOrigins: [],
    });
  });

  it('reads the strings `cdk deploy -c` passes: numbers, booleans, JSON and comma lists', () => {
    const settings = parseDeploySettings({
      agentsPublic: 'false',
      agentMaxCapacity: '8',
      clientCidrs: '203.0.113.0/24, 198.51.100.7/32',
      corsOrigins: '["https://a.example","https://b.example"]',
      deployStepNonce: '1700000000',
    });
    expect(settings).toMatchObject({
      agentsPublic: false,
      natGateways: 1,
      agentMaxCapacity: 8,
      clientCidrs: ['203.0.113.0/24', '198.51.100.7/32'],
      corsOrigins: ['https://a.example', 'https://b.example'],
      deployStepNonce: '1700000000',
    });
  });

  it('rejects inconsistent settings and names each of them', () => {
    let message = '';
    try {
      parseDeploySettings({
        grpcPort: 3050,
        clientCidrs: 'everyone',
        logRetentionDays: 42,
        agentsPublic: false,
        natGateways: 0,
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^invalid CDK context: /);
    expect(message).toContain('grpcPort: must be outside the port range');
    expect(message).toContain('clientCidrs.0: must be an IPv4 CIDR');
    expect(message).toContain('logRetentionDays: must be one of');
    expect(message).toContain('natGateways: private agents need a NAT gateway');
  });

  it('takes a range of child user ids from 100000, at least one per instance port', () => {
    expect(parseDeploySettings({}).agentChildUids).toBeUndefined();
    expect(parseDeploySettings({ agentChildUids: '200000-200999' }).agentChildUids).toBe(
      '200000-200999',
    );
    const refusal = (agentChildUids: string) => {
      try {
        parseDeploySettings({ agentChildUids });
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(refusal('1000-1999')).toContain('agentChildUids: must look like 200000-200999');
    // Below 100000 live real accounts: a 5-digit start is not even of the form.
    expect(refusal('99999-200000')).toContain('agentChildUids: must look like 200000-200999');
    expect(refusal('200999-200000')).toContain('agentChildUids: must be an increasing range');
    expect(refusal('200000-200049')).toContain('agentChildUids: needs at least as many user ids');
  });
});
