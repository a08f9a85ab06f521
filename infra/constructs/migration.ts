// The deploy-time database step as a custom resource: lambdas/migrate.ts runs
// the migrations, enables the application logins and publishes DATABASE_URL.
// Whatever must not serve before the schema is current depends on it
// (`runsBefore`). It re-runs when a migration, its code or its inputs change.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CustomResource, Duration } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, type IConstruct } from 'constructs';
import type { Config } from './config.js';
import type { Data } from './data.js';
import type { Network } from './network.js';
import { NodeFunction } from './node-function.js';
import { REPO_ROOT } from './paths.js';
import { acknowledgeProviderFramework } from './provider-framework.js';

export interface MigrationProps {
  network: Network;
  data: Data;
  config: Config;
  logRetention: logs.RetentionDays;
  /** Any new value re-runs the step (after changing an application role's password). */
  nonce: string;
}

/** The SecureString parameters lambdas/migrate.ts writes (its DATABASE_URL_PARAMETER, ADMIN_TOKEN_PARAMETER). */
export const DEPLOY_STEP_PARAMETERS = ['DATABASE_URL', 'MINIMCP_ADMIN_TOKEN'];

/** Files that decide what the step does, relative to the repository root. */
const STEP_SOURCES = [
  'migrations',
  'core/db',
  'lambdas/control/db/migrate.ts',
  'lambdas/migrate.ts',
];

/** A digest of `sources` (files, or folders recursively): a change re-runs the step. */
export function digestOf(sources: string[]): string {
  const hash = createHash('sha256');
  const add = (relative: string) => {
    const full = path.join(REPO_ROOT, relative);
    if (statSync(full).isDirectory()) {
      for (const name of readdirSync(full).sort()) add(path.join(relative, name));
      return;
    }
    hash.update(`${relative}\0`);
    hash.update(readFileSync(full));
  };
  sources.forEach(add);
  return hash.digest('hex').slice(0, 16);
}

export class Migration extends Construct {
  readonly resource: CustomResource;
  readonly handler: NodeFunction;

  constructor(scope: Construct, id: string, props: MigrationProps) {
    super(scope, id);
    const { network, data, config } = props;

    this.handler = new NodeFunction(this, 'Handler', {
      entry: 'lambdas/migrate.ts',
      description: 'MiniMCP deploy step: migrations, application logins, DATABASE_URL',
      vpc: network.vpc,
      vpcSubnets: network.isolatedSubnets,
      securityGroups: [network.migrationSecurityGroup],
      logRetention: props.logRetention,
      timeout: Duration.minutes(10),
      assets: ['migrations'],
    });
    const fn = this.handler.function;
    for (const secret of [data.masterSecret, data.appSecret, data.agentSecret])
      secret.grantRead(fn);
    config.grantWrite(fn, DEPLOY_STEP_PARAMETERS);

    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: fn,
      logGroup: this.handler.logGroup,
    });
    acknowledgeProviderFramework(provider, fn);

    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::MiniMcpDatabaseStep',
      properties: {
        MasterSecretArn: data.masterSecret.secretArn,
        AppSecretArn: data.appSecret.secretArn,
        AgentSecretArn: data.agentSecret.secretArn,
        ProxyEndpoint: data.proxy.endpoint,
        SsmPrefix: config.prefix,
        // Not read by the handler: they only make CloudFormation run it again.
        SourceDigest: digestOf(STEP_SOURCES),
        Nonce: props.nonce,
      },
    });
    // The schema is migrated only once the database accepts connections and
    // the proxy knows the application login.
    this.resource.node.addDependency(data.instance, data.proxy);
  }

  /** `targets` are created or updated only after the step succeeded. */
  runsBefore(...targets: IConstruct[]): void {
    for (const target of targets) target.node.addDependency(this.resource);
  }
}
