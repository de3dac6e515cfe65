import { solveChallenge } from 'altcha-lib/v1';
import { expect } from 'vitest';

/** An ALTCHA challenge as the API hands it out (a 428's `error.challenge`, or GET /api/v1/captcha/challenge). */
export interface Challenge {
  algorithm: string;
  challenge: string;
  salt: string;
  signature: string;
  maxnumber: number;
}

/** Solves a challenge as the browser widget would, returning the vote's `captcha` field. */
export async function solveCaptcha(challenge: Challenge): Promise<string> {
  const solution = await solveChallenge(challenge.challenge, challenge.salt, challenge.algorithm, challenge.maxnumber).promise;
  expect(solution).not.toBeNull();
  const payload = {
    algorithm: challenge.algorithm,
    challenge: challenge.challenge,
    number: solution!.number,
    salt: challenge.salt,
    signature: challenge.signature,
  };
  return Buffer.from(JSON.stringify(payload)).toString('base64');
}
