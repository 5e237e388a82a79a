/**
 * The sample drivers of Linux 4.10, the legacy profile's kernel: its
 * samples/vfio-mdev/ held mtty.c alone (mdpy and mbochs arrived in 4.16).
 * What `mdevfs mount --profile legacy` shows when no --driver is given;
 * `--driver examples/samples.ts` still loads all three.
 */
import type { VendorPlugin } from 'mdevfs';
import mtty from './mtty.js';

const samples: VendorPlugin[] = [mtty];

export default samples;
