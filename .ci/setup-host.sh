#!/usr/bin/env bash
# Host set-up for the data plane's tests and benchmarks: reserve 2 MiB
# hugepages and mount hugetlbfs where the kernel lets us. Where it cannot
# (containers, no root), nothing fails: the tests fall back to EAL --no-huge.
set -u
want=${HUGEPAGES:-512}
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$hp" ] && [ "$(cat "$hp")" -lt "$want" ]; then
  echo "$want" > "$hp" 2>/dev/null || true
fi
if ! grep -q hugetlbfs /proc/mounts 2>/dev/null; then
  mkdir -p /dev/hugepages 2>/dev/null && mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
fi
echo "setup-host: hugepages $(grep HugePages_Free /proc/meminfo | awk '{print $2}') free of $(cat "$hp" 2>/dev/null || echo 0); hugetlbfs $(grep -q hugetlbfs /proc/mounts && echo mounted || echo 'not mounted (tests use --no-huge)')"
exit 0
