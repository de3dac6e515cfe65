/** Why a vote landed SUSPICIOUS (stored in votes.flag_reasons, shown to reviewers). */
export const FLAG_REASONS = { velocity: 'IP_PREFIX_VELOCITY', tooFast: 'TOO_FAST' } as const;
