/**
 * Time arithmetic of the language, all in UTC epoch milliseconds: a fast ISO 8601 reader (no
 * `Date` allocation, never local time) and calendar-exact month/year shifts, so that "30 years
 * before now" flips exactly on the 30th birthday.
 */
import type { TimeUnit } from './ast.js';

/** Milliseconds in one UTC day. */
export const DAY_MS = 86_400_000;

const FIXED_UNIT_MS: Record<TimeUnit, number> = {
  seconds: 1000,
  minutes: 60_000,
  hours: 3_600_000,
  days: DAY_MS,
  weeks: 7 * DAY_MS,
  months: 0,
  years: 0,
};

/** Longest a unit can be, for conservative window bounds (months = 31 days, years = 366 days). */
export function maxUnitMs(unit: TimeUnit): number {
  if (unit === 'months') return 31 * DAY_MS;
  if (unit === 'years') return 366 * DAY_MS;
  return FIXED_UNIT_MS[unit];
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = m > 2 ? m - 3 : m + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return isLeap(y) ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Shifts an instant by whole calendar months, clamping the day (Jan 31 + 1 month = Feb 28/29). */
export function addMonths(ms: number, months: number): number {
  const days = Math.floor(ms / DAY_MS);
  const msOfDay = ms - days * DAY_MS;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  const total = y * 12 + (m - 1) + months;
  const ny = Math.floor(total / 12);
  const nm = total - ny * 12 + 1;
  return daysFromCivil(ny, nm, Math.min(d, daysInMonth(ny, nm))) * DAY_MS + msOfDay;
}

/** `ms` shifted by `amount` units (negative goes back); months and years follow the calendar. */
export function shift(ms: number, amount: number, unit: TimeUnit): number {
  if (unit === 'months') return addMonths(ms, amount);
  if (unit === 'years') return addMonths(ms, amount * 12);
  return ms + amount * FIXED_UNIT_MS[unit];
}

/** Start of the UTC day containing `ms`. */
export function startOfDay(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** First UTC midnight at or after `ms`. */
export function ceilDay(ms: number): number {
  return Math.ceil(ms / DAY_MS) * DAY_MS;
}

function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(at + k) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/**
 * Reads `YYYY-MM-DD` or ISO 8601 date-time (`T` or space, optional seconds and fraction, `Z` or
 * `±HH:MM`; no offset means UTC) into epoch ms; NaN when malformed. Numbers pass through as epoch ms.
 */
export function parseInstant(value: unknown): number {
  if (typeof value === 'number') return Number.isFinite(value) ? value : NaN;
  if (typeof value !== 'string') return NaN;
  const s = value;
  const len = s.length;
  if (len < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN;
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) return NaN;
  let ms = daysFromCivil(y, mo, d) * DAY_MS;
  if (len === 10) return ms;
  const sep = s.charCodeAt(10);
  if (sep !== 84 && sep !== 116 && sep !== 32) return NaN;
  if (len < 16 || s.charCodeAt(13) !== 58) return NaN;
  const h = digits(s, 11, 2);
  const mi = digits(s, 14, 2);
  if (h < 0 || h > 23 || mi < 0 || mi > 59) return NaN;
  ms += h * 3_600_000 + mi * 60_000;
  let i = 16;
  if (s.charCodeAt(i) === 58) {
    const sec = digits(s, i + 1, 2);
    if (sec < 0 || sec > 59) return NaN;
    ms += sec * 1000;
    i += 3;
    if (s.charCodeAt(i) === 46 || s.charCodeAt(i) === 44) {
      i++;
      let scale = 100;
      let frac = 0;
      const fracStart = i;
      while (i < len) {
        const c = s.charCodeAt(i) - 48;
        if (c < 0 || c > 9) break;
        frac += c * scale;
        scale /= 10;
        i++;
      }
      if (i === fracStart) return NaN;
      ms += Math.floor(frac);
    }
  }
  if (i === len) return ms;
  const z = s.charCodeAt(i);
  if ((z === 90 || z === 122) && i + 1 === len) return ms;
  if (z !== 43 && z !== 45) return NaN;
  const oh = digits(s, i + 1, 2);
  const hasColon = s.charCodeAt(i + 3) === 58;
  const om = digits(s, i + (hasColon ? 4 : 3), 2);
  if (oh < 0 || oh > 23 || om < 0 || om > 59 || i + (hasColon ? 6 : 5) !== len) return NaN;
  const offset = (oh * 60 + om) * 60_000;
  return z === 43 ? ms - offset : ms + offset;
}
