// The pause before a dropped stream is opened again: growing with each failure in a row,
// back to the first once a stream delivered something.
const PAUSES_MS = [250, 500, 1000, 2000, 4000];

export function pause(failures: number): Promise<void> {
  const ms = PAUSES_MS[Math.min(failures, PAUSES_MS.length - 1)];
  return new Promise((resolve) => setTimeout(resolve, ms));
}
