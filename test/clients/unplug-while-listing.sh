#!/bin/sh
# Inside `mdevfs run`: hot-unplug a parent while mdevctl is listing it, then
# plug it back (README, "Hot-plug and faults on demand"). MDEVFS is the
# mdevfs command (default: mdevfs on PATH).
set -eu
MDEVFS=${MDEVFS:-mdevfs}
U=83b8f4f2-509f-382f-3c1e-e6bfe0fa0001
mdevctl start -u $U -p mtty -t mtty-2
mdevctl list | grep -q "^$U mtty mtty-2"

# mdevctl lists over and over while the vendor unregisters mtty.
( while :; do mdevctl list >/dev/null 2>&1 || echo "mdevctl list exited $?"; done ) &
LISTER=$!
$MDEVFS ctl unplug mtty
kill $LISTER

if mdevctl list | grep -q $U; then echo "$U still listed"; exit 1; fi
if mdevctl types | grep -q '^mtty$'; then echo 'mtty still listed'; exit 1; fi
$MDEVFS ctl plug mtty
mdevctl start -u $U -p mtty -t mtty-2
mdevctl list
