import { configGuardEncoded } from '../../tools/lib/installers/config-guard.ts';

/** The variables of the built-in WiX template for one test site (validated identifiers only). */
export const TEST_UPGRADE_CODE = '0B5E1C1A-2222-4333-8444-555566667777';

export function testWixValues(
  mode: 'serviceInstall' | 'agentCommand' = 'serviceInstall',
): Record<string, string> {
  return {
    PRODUCT_CODE: '1B5E1C1A-2222-4333-8444-555566667777',
    UPGRADE_CODE: TEST_UPGRADE_CODE,
    VENDOR: 'Example Vendor',
    PRODUCT: 'Agent',
    SERVICE_NAME: 'SignetTestAgent',
    AGENT_FILE: 'agent.exe',
    VERSION: '1.2.3',
    SITE_CODE: 'ACME-HQ',
    KEY_VERSION: '3',
    FINGERPRINT_HEX: '7F2A',
    ICON_XML: '',
    MSI_SERVICE_MODE: mode,
    SERVICE_ARGS: 'run',
    INSTALL_ARGS: 'install',
    UNINSTALL_ARGS: 'uninstall',
    CONFIG_CHECK_SCRIPT_B64: configGuardEncoded({ vendor: 'Example Vendor', product: 'Agent' }),
  };
}
