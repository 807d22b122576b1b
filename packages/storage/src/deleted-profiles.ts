/**
 * Privacy-deleted profiles leave a tombstone (`deleted_profiles`) that membership writes read:
 * an evaluation that read a profile just before its delete writes none of its memberships or
 * events afterwards (see Store.deleteProfile).
 */
import type { BatchMembershipPage } from './port.js';

/** The distinct profile ids a batch page writes memberships or re-evaluations for. */
export function pageProfileIds(page: BatchMembershipPage): string[] {
  return [...new Set([...page.changes.map((c) => c.profileId), ...page.schedule.map((s) => s.profileId)])];
}

/** The page without the changes and re-evaluations of `gone` profiles (confirmations find no rows of them). */
export function withoutDeleted(page: BatchMembershipPage, gone: ReadonlySet<string>): BatchMembershipPage {
  if (gone.size === 0) return page;
  return { ...page, changes: page.changes.filter((c) => !gone.has(c.profileId)), schedule: page.schedule.filter((s) => !gone.has(s.profileId)) };
}
