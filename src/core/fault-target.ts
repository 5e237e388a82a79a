/** What an object of the core is, for the filters of an injected fault (faults.ts). */
import type { FaultTarget } from './faults.js';
import { DeviceImpl, ParentImpl, TypeImpl } from './objects.js';

/** The filters a core object answers to: a device, a type or a parent (an attribute's owner). */
export function faultTarget(obj: unknown): FaultTarget {
  if (obj instanceof DeviceImpl) return { parent: obj.parent.name, type: obj.type.id, uuid: obj.uuid };
  if (obj instanceof TypeImpl) return { parent: obj.parent.name, type: obj.id };
  if (obj instanceof ParentImpl) return { parent: obj.name };
  return {};
}
