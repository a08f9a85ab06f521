// The CDK app (`cdk.json` runs it): one MiniMCP stack, configured by CDK
// context (infra/stacks/settings.ts, docs/deploy.md), checked by cdk-nag's
// AWS Solutions rules on every synth. Environment-agnostic (the AZs and the
// AMI resolve at deploy time), so `cdk synth` needs no AWS credentials.
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { MiniMcpStack } from './stacks/minimcp-stack.js';
import { readDeploySettings } from './stacks/settings.js';

const app = new App();
const settings = readDeploySettings((key) => app.node.tryGetContext(key));

new MiniMcpStack(app, settings.stackName, {
  stackName: settings.stackName,
  description: 'MiniMCP: MCP servers on demand (API, database, host agents)',
  settings,
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
