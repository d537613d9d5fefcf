# Shared by scripts/serve and scripts/test: installs what is missing, idempotently.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

# Whether a Debian package is installed (not merely known: a removed one
# leaves its configuration behind).
installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

apt_install() {
    local missing=()
    for pkg in "$@"; do
        installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Installs from Debian's backports where this is bookworm (plain bookworm's
# qemu-system-x86 would replace the newer qemu-utils some images carry).
apt_install_backports() {
    local missing=()
    for pkg in "$@"; do
        installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    local codename target=()
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    if [ "$codename" = bookworm ]; then
        local list=/etc/apt/sources.list.d/neocloud-backports.list
        if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
            echo "deb http://deb.debian.org/debian bookworm-backports main" | as_root tee "$list" >/dev/null
        fi
        target=(-t bookworm-backports)
    fi
    echo "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${target[@]}" "${missing[@]}" >/dev/null
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        apt_install curl ca-certificates build-essential
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    command -v cc >/dev/null 2>&1 || apt_install build-essential
}

# A Debian cloud kernel, extracted (not installed) into $1: `vmlinuz` and the
# modules the agent's UEFI guest tests load (efivarfs, virtio block and net), for
# crates/agent/tests/guest. Fetched once.
TEST_KERNEL_MODULES="efivarfs virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk failover net_failover virtio_net"
fetch_test_kernel() {
    local dir="$1" m missing=""
    for m in $TEST_KERNEL_MODULES; do
        [ -f "$dir/$m.ko" ] || missing=1
    done
    [ -f "$dir/vmlinuz" ] && [ -z "$missing" ] && return 0
    local pkg
    pkg="$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')"
    if [ -z "$pkg" ]; then
        as_root apt-get update -qq
        pkg="$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')"
    fi
    local tmp ko
    tmp="$(mktemp -d)"
    chmod 0777 "$tmp"
    (cd "$tmp" && apt-get download -qq "$pkg" >/dev/null)
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    mkdir -p "$dir"
    cp "$tmp"/x/boot/vmlinuz-* "$dir/vmlinuz"
    for m in $TEST_KERNEL_MODULES; do
        ko="$(find "$tmp/x" -name "$m.ko*" | head -1)"
        [ -n "$ko" ] || { echo "no $m module in $pkg" >&2; return 1; }
        case "$ko" in
            *.ko.xz) xz -dc "$ko" >"$dir/$m.ko" ;;
            *.ko.zst) zstd -qdc "$ko" >"$dir/$m.ko" ;;
            *) cp "$ko" "$dir/$m.ko" ;;
        esac
    done
    echo "$pkg" >"$dir/package"
    rm -rf "$tmp"
}
