/** Retries with exponential backoff (pure scheduling; the caller decides what is retryable). */
export function backoffDelays(retries: number, firstWaitMs: number, maxWaitMs = 30_000): number[] {
  const out: number[] = [];
  for (let i = 0; i < retries; i++) out.push(Math.min(maxWaitMs, firstWaitMs * 2 ** i));
  return out;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
