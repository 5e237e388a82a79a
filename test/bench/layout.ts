/**
 * The paths the benchmark client uses, relative to a mount point. The baseline
 * file system serves its files at exactly these paths, so both targets pay
 * the same per-component LOOKUPs (entry_timeout=0 means every open walks the
 * whole path through the server).
 */
export const PARENT_DIR = 'devices/virtual/mbench/mbench';
export const TYPE_DIR = `${PARENT_DIR}/mdev_supported_types/mbench-1`;
/** open+read-until-EOF+close target (mdevfs: computed; baseline: static). */
export const ATTR = `${TYPE_DIR}/available_instances`;
/** Write a UUID here to create a device. */
export const CREATE = `${TYPE_DIR}/create`;
/** An attribute whose content never changes, reached through a class link (mdevfs only). */
export const DEEP = 'class/mdev_bus/mbench/mdev_supported_types/mbench-1/name';
/** The same shape on the host's real sysfs: a class link, then an attribute. */
export const SYSFS_DEEP = '/sys/class/net/lo/addr_len';
/** One symlink per device; `<uuid>/remove` is reached through it. */
export const DEVICES = 'bus/mdev/devices';
