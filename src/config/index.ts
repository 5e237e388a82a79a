/**
 * Declarative vendors ("vendors without code"): a JSON config compiles into an
 * ordinary VendorPlugin; `captureSysfs` writes such a config from a real host.
 *
 * For the CLI:
 *   mdevfs mount --config <file>   → core.loadPlugin(await loadConfigFile(file))
 *   mdevfs capture [--sysfs <root>] [-o file]
 *                                  → formatConfig(await captureSysfs(root))
 * Both throw ConfigError, whose message is ready to print.
 */
export { loadConfigFile, loadConfigDoc, parseConfig } from './load.js';
export { captureSysfs, formatConfig, CAPTURE_SKIP_PARENT_FILES, type CaptureOptions } from './capture.js';
export { compileConfig, compileParent, type CompileOptions } from './compile.js';
export { validateConfig, assertValidConfig } from './validate.js';
export { ConfigError, type ConfigIssue, type ConfigErrorKind } from './errors.js';
export {
  DeviceLedger,
  ParentCapacity,
  perTypeMax,
  sharedPool,
  oneTypeAtATime,
  sharedCount,
  type CapacityRule,
  type TypeRef,
  type DeviceRef,
} from './capacity.js';
export type * from './types.js';
export { CONFIG_VERSION, DEVICE_APIS, CAPACITY_MODELS, CAPACITY_ERRNOS, PLACEHOLDERS } from './types.js';
