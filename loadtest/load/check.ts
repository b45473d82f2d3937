// The study's request, and what counts as a good answer to it: status 200, a JSON body with a
// `predictions` array of one entry per image, and (through the gateway) the route asked for.
// Anything else is counted apart, so fast errors never count as throughput. A benchmark against a
// trivial upstream judges answers by their exact body instead (exactAnswer).
import { sampleImage } from '../../common/index.js';

export const IMAGES_PER_REQUEST = 2;
export const TOPK = 5;

/** `{"images": [b64, b64], "topk": 5}` of the one fixed sample image. */
export async function studyRequestBody(): Promise<string> {
  const image = (await sampleImage()).toString('base64');
  return JSON.stringify({ images: Array.from({ length: IMAGES_PER_REQUEST }, () => image), topk: TOPK });
}

export type Verdict = 'ok' | 'non2xx' | 'mismatch';

/** How one answer is judged, from its status, body and headers. */
export type AnswerCheck = (status: number, body: string, headers: Record<string, unknown>) => Verdict;

const answeredOn = (headers: Record<string, unknown>) =>
  Object.entries(headers).find(([name]) => name.toLowerCase() === 'x-privacy-route')?.[1];

/** Classifies one answer. `route`, when given, must match the gateway's x-privacy-route header. */
export function checkAnswer(
  status: number,
  body: string,
  headers: Record<string, unknown>,
  route?: 'public' | 'secure',
): Verdict {
  if (status < 200 || status >= 300) return 'non2xx';
  if (status !== 200) return 'mismatch';
  if (route !== undefined && answeredOn(headers) !== route) return 'mismatch';
  try {
    const parsed = JSON.parse(body) as { predictions?: unknown };
    return Array.isArray(parsed.predictions) && parsed.predictions.length === IMAGES_PER_REQUEST ? 'ok' : 'mismatch';
  } catch {
    return 'mismatch';
  }
}

/** The study's answer (checkAnswer), through the gateway on `route` when given. */
export const studyAnswer =
  (route?: 'public' | 'secure'): AnswerCheck =>
  (status, body, headers) =>
    checkAnswer(status, body, headers, route);

/** A 2xx answer whose body is exactly `expected` (`undefined`: any body), on `route` when given. */
export function exactAnswer(expected: string | undefined, route?: 'public' | 'secure'): AnswerCheck {
  return (status, body, headers) => {
    if (status < 200 || status >= 300) return 'non2xx';
    if (route !== undefined && answeredOn(headers) !== route) return 'mismatch';
    return expected === undefined || body === expected ? 'ok' : 'mismatch';
  };
}
