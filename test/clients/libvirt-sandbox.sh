#!/bin/sh
# Inside `mdevfs run`: start Debian's real libvirtd with only the node-device
# driver (URI nodedev:///system; with LIBVIRT_SANDBOX_QEMU=1 the QEMU driver
# too) and private state, run "$@", stop libvirtd.
# Nothing of the host's is written: /run is the run's private tmpfs (with a
# fresh tmpfs on /run/libvirt too), /var gets an overlay whose upper layer is
# in that tmpfs, and /etc/libvirt is a private copy.
set -eu
S=/run/mdevfs-libvirt-test
mkdir -p "$S" /run/libvirt
mount -t tmpfs lvtest "$S"
mount -t tmpfs lvrun /run/libvirt
mkdir -p "$S/var-upper" "$S/var-work" "$S/etc-libvirt" "$S/drivers"
mount -t overlay lvvar -o "lowerdir=/var,upperdir=$S/var-upper,workdir=$S/var-work" /var
mkdir -p /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
if [ -d /etc/libvirt ]; then cp -a /etc/libvirt/. "$S/etc-libvirt/"; mount --bind "$S/etc-libvirt" /etc/libvirt; fi
DRV=$(ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_nodedev.so 2>/dev/null | head -n1)
[ -n "$DRV" ] || { echo "libvirt-sandbox: libvirt_driver_nodedev.so not found" >&2; exit 90; }
ln -s "$DRV" "$S/drivers/"
# LIBVIRT_SANDBOX_QEMU=1: the QEMU driver too (qemu:///system, for nodeinfo), run as
# root with no security driver or cgroups. It resolves its compiled-in user
# libvirt-qemu before reading qemu.conf, so a host without that user gets
# private copies of /etc/passwd and /etc/group that have it.
if [ -n "${LIBVIRT_SANDBOX_QEMU:-}" ]; then
  ln -s "$(dirname "$DRV")/libvirt_driver_qemu.so" "$S/drivers/"
  [ -d /etc/libvirt ] || { echo "libvirt-sandbox: no /etc/libvirt to hold qemu.conf" >&2; exit 90; }
  printf 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\ncgroup_controllers = [ ]\n' >"$S/etc-libvirt/qemu.conf"
  if ! getent passwd libvirt-qemu >/dev/null; then
    cp /etc/passwd "$S/passwd"
    echo 'libvirt-qemu:x:64055:64055::/nonexistent:/usr/sbin/nologin' >>"$S/passwd"
    mount --bind "$S/passwd" /etc/passwd
  fi
  if ! getent group libvirt-qemu >/dev/null || ! getent group kvm >/dev/null; then
    cp /etc/group "$S/group"
    getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$S/group"
    getent group kvm >/dev/null || echo 'kvm:x:64056:' >>"$S/group"
    mount --bind "$S/group" /etc/group
  fi
fi
LIBVIRT_DRIVER_DIR="$S/drivers" /usr/sbin/libvirtd --pid-file /run/libvirt/mdevfs-test.pid >"$S/libvirtd.log" 2>&1 &
LVPID=$!
stop() {
  kill "$LVPID" 2>/dev/null || true
  i=0
  while kill -0 "$LVPID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  kill -9 "$LVPID" 2>/dev/null || true
}
trap stop EXIT
i=0
until timeout 5 virsh -c nodedev:///system nodedev-list >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -ge 100 ] || ! kill -0 "$LVPID" 2>/dev/null; then
    echo "libvirt-sandbox: libvirtd did not come up" >&2
    cat "$S/libvirtd.log" >&2
    exit 91
  fi
  sleep 0.1
done
set +e
"$@"
status=$?
if [ -n "${LIBVIRT_SANDBOX_LOG:-}" ]; then cat "$S/libvirtd.log" >&2; fi
exit $status
