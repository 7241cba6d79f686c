/** deliver: installers go only to the vendor's callback — authenticated uploads, then a notice with the request id. */
import { resolve } from 'node:path';
import * as act from '../../../tools/action/action.ts';
import { deliverSettings as schema } from '../../../tools/action/settings.ts';
import { deliver, deliveryReport } from '../../../tools/lib/deliver/index.ts';
import { tokenFromInputs } from '../../../tools/lib/deliver/token.ts';

await act.runAction(async () => {
  const key = process.env['SIGNET_SEAL_PRIVATE_KEY'];
  act.mask(key);
  const s = act.readSettings(schema, Object.keys(schema.shape), ['token', 'seal-private-key']);
  const cwd = act.workspace(s['working-directory']);
  const r = await deliver({
    callback: s['callback-url'],
    token: tokenFromInputs(s.token, s['sealed-token'], s['seal-private-key'] ?? key),
    requestId: s['request-id'],
    status: s.status,
    error: { code: s['error-code'], message: s['error-message'] },
    files: s.files,
    cwd,
    caFile: s['ca-file'] && resolve(cwd, s['ca-file']),
    onSecret: act.mask,
    fields: { callback: 'input callback-url', requestId: 'input request-id', files: 'input files' },
  });
  act.setOutputs({ delivered: r.delivered, 'request-id': r.requestId, files: r.files });
  await act.writeSummary(deliveryReport(r));
});
