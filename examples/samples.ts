/**
 * The kernel's three sample mdev drivers (samples/vfio-mdev/), loaded together:
 * what `mdevfs mount` shows when no --driver is given.
 */
import type { VendorPlugin } from 'mdevfs';
import mtty from './mtty.js';
import mdpy from './mdpy.js';
import mbochs from './mbochs.js';

const samples: VendorPlugin[] = [mtty, mdpy, mbochs];

export default samples;
