import { describe, expect, it } from 'vitest';
import { hasVersionSection, updateChangelog } from './update.ts';

describe('changelog idempotence matches the heading Signet writes', () => {
  it('a ### 1.2.0 migration note under another version is not the 1.2.0 section', () => {
    const text = '# Changelog\n\n## 1.1.0 (2026-01-01)\n\n### 1.2.0 migration notes\n\nRead this.\n';
    expect(hasVersionSection(text, '1.2.0')).toBe(false);
    const out = updateChangelog(text, '## 1.2.0 (2026-02-01)\n\n* x\n', '1.2.0');
    expect(out.changed).toBe(true);
    expect(out.text.startsWith('# Changelog\n\n## 1.2.0 (2026-02-01)\n')).toBe(true);
    expect(hasVersionSection('## 1.2.0 is coming\n', '1.2.0')).toBe(false);
    expect(hasVersionSection('# [1.2.0](x) (d)\n', '1.2.0')).toBe(false);
  });
  it('the forms Signet writes count (with and without link or date, CRLF too)', () => {
    for (const h of [
      '## [1.2.0](https://x/compare/v1.1.0...v1.2.0) (2026-02-01)',
      '## 1.2.0 (2026-02-01)',
      '## [1.2.0]',
      '## 1.2.0',
    ]) {
      expect(hasVersionSection(`# Changelog\r\n\r\n${h}\r\n\r\n* x\r\n`, '1.2.0')).toBe(true);
    }
  });
});
