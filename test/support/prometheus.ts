// Reads a /metrics endpoint the way a Prometheus server would: fetched, its
// content type checked, and the text parsed by a Prometheus text-format
// parser (not by our own code), then summed by label set.
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import type { Registry } from 'prom-client';

export type Scrape = PrometheusFamily[];

export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status}`);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain; version=0.0.4'))
    throw new Error(`GET ${url}: not the Prometheus text format (${type})`);
  return parsePrometheusTextFormat(await response.text());
}

/**
 * The sum over the samples of `name` whose labels include `labels`: a
 * counter's or gauge's value, a summary's count. 0 when none.
 */
export function sampleValue(
  families: Scrape,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.find((candidate) => candidate.name === name);
  // The parser drops a histogram's labels: read histograms from the registry (histogramCount).
  if (family?.type === 'HISTOGRAM') throw new Error(`${name} is a histogram: use histogramCount`);
  let total = 0;
  for (const sample of family?.metrics ?? []) {
    const own = sample.labels ?? {};
    if (!Object.entries(labels).every(([key, value]) => own[key] === value)) continue;
    total += Number(sample.count ?? sample.value ?? 0);
  }
  return total;
}

/** How much a sample moved between two scrapes. */
export function moved(
  before: Scrape,
  after: Scrape,
  name: string,
  labels: Record<string, string> = {},
): number {
  return sampleValue(after, name, labels) - sampleValue(before, name, labels);
}

/** Observations of a histogram whose labels include `labels`, from prom-client's registry JSON. */
export async function histogramCount(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((candidate) => candidate.name === name);
  let total = 0;
  for (const value of metric?.values ?? []) {
    const own = value.labels as Record<string, string | number | undefined>;
    if ((value as { metricName?: string }).metricName !== `${name}_count`) continue;
    if (Object.entries(labels).every(([key, wanted]) => String(own[key]) === wanted))
      total += value.value;
  }
  return total;
}
