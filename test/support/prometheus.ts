// Reads a /metrics endpoint the way a Prometheus server would: fetched, its
// content type checked, and the text parsed by a Prometheus text-format
// parser (not by our own code), then summed by label set.
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';

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
 * counter's or gauge's value, a histogram's or summary's count. 0 when none.
 */
export function sampleValue(
  families: Scrape,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.find((candidate) => candidate.name === name);
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
