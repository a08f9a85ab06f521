// Builds the MiniMCP stack the way infra/app.ts does (cdk.json's context and
// feature flags, plus overrides), without bundling, and runs cdk-nag's AWS
// Solutions checks on it. One call per test file: a synth takes seconds.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, type PolicyViolation } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { REPO_ROOT } from '../../infra/constructs/paths.js';
import { MiniMcpStack } from '../../infra/stacks/minimcp-stack.js';
import { readDeploySettings, type DeploySettings } from '../../infra/stacks/settings.js';

export interface SynthesizedStack {
  stack: MiniMcpStack;
  settings: DeploySettings;
  template: Template;
  /** cdk-nag findings nobody acknowledged, as `rule at construct path` lines. */
  nagFindings: string[];
}

export function synthStack(context: Record<string, unknown> = {}): SynthesizedStack {
  const cdkJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  const app = new App({
    context: { ...cdkJson.context, ...context, 'aws:cdk:bundling-stacks': [] },
  });
  const settings = readDeploySettings((key) => app.node.tryGetContext(key));
  const stack = new MiniMcpStack(app, settings.stackName, {
    stackName: settings.stackName,
    settings,
  });
  const report = new AwsSolutionsChecks().validateScope(stack);
  const nagFindings = report.violations.flatMap((violation: PolicyViolation) =>
    violation.violatingResources.map(
      (resource) =>
        `${violation.ruleName} at ${resource.constructPath ?? resource.resourceLogicalId}`,
    ),
  );
  return { stack, settings, template: Template.fromStack(stack), nagFindings };
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(stack: MiniMcpStack, element: unknown): string {
  return stack.resolve(
    stack.getLogicalId(element as Parameters<MiniMcpStack['getLogicalId']>[0]),
  ) as string;
}
