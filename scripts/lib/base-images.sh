# shellcheck shell=bash
# Local stand-ins for the Docker Hub base images cloudship's demo and tests use
# (busybox:latest, python:3.11-slim, and debian:bookworm-slim, the base of the local
# runtime's nginx proxy image). Sourced by scripts/dev-env.
#
# Why: some machines (sandboxes, air-gapped CI) cannot reach Docker Hub, yet the
# examples say `FROM python:3.11-slim` and the tests run `busybox`. We build
# look-alikes from Debian packages this machine can already get, label them
# org.cloudship.stand-in=true, and only do so when Docker Hub is unreachable.
#
# The caller provides say() and die(); simple fallbacks are defined here so the
# file can also be sourced on its own.

if ! declare -F say >/dev/null; then say() { printf 'dev-env: %s\n' "$*"; }; fi
if ! declare -F die >/dev/null; then die() { printf 'dev-env: ERROR: %s\n' "$*" >&2; exit 1; }; fi

CS_STAND_IN_LABEL=org.cloudship.stand-in
CS_CACHE_DIR=${CLOUDSHIP_CACHE_DIR:-/var/cache/cloudship}
CS_HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
CS_SUITE=bookworm
# Bump when the python stand-in recipe below changes, so cached rootfs tarballs are rebuilt.
CS_PYTHON_RECIPE=1

# ---------------------------------------------------------------------------
# Temporary directories, removed on exit without ever following a mount.
# ---------------------------------------------------------------------------
CS_CLEANUP_DIRS=()

# Results are returned in globals, not via $(...): a subshell could neither
# register the directory for cleanup nor stop the script with die().
CS_TMP=""
cs_mktemp_dir() { # PARENT: make a temp dir (-> CS_TMP) that cs_cleanup removes later
    mkdir -p "$1"
    CS_TMP=$(mktemp -d "$1/tmp.XXXXXX")
    CS_CLEANUP_DIRS+=("$CS_TMP")
}

cs_safe_rmtree() { # DIR: rm -rf that first unmounts anything debootstrap left mounted inside
    local dir=$1 mnt
    [[ -n $dir && $dir != / && -d $dir ]] || return 0
    # A failed debootstrap can leave /proc, /sys or /dev mounted in its target;
    # deleting through those would be a disaster, so unmount (deepest first).
    while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
    rm -rf --one-file-system "$dir"
}

cs_cleanup() {
    local dir
    for dir in "${CS_CLEANUP_DIRS[@]}"; do cs_safe_rmtree "$dir"; done
    CS_CLEANUP_DIRS=()
}

# ---------------------------------------------------------------------------
# Small queries
# ---------------------------------------------------------------------------
cs_image_present() { # IMAGE
    docker image inspect "$1" >/dev/null 2>&1
}

cs_image_is_stand_in() { # IMAGE
    [[ $(docker image inspect --format "{{ index .Config.Labels \"$CS_STAND_IN_LABEL\" }}" "$1" 2>/dev/null) == true ]]
}

cs_docker_hub_reachable() {
    # Any HTTP answer (normally 401) means reachable; DNS failure, refused
    # connection or timeout means not. Kept short so re-runs stay fast.
    local code
    code=$(curl -sS -o /dev/null -w '%{http_code}' --connect-timeout 4 --max-time 6 \
        https://registry-1.docker.io/v2/ 2>/dev/null) || true
    [[ -n $code && $code != 000 ]]
}

cs_apt_mirror() {
    # The Debian mirror this machine's apt already uses for $CS_SUITE, so
    # debootstrap goes wherever apt is known to work (proxies, snapshots, ...).
    local mirror="" f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        # deb822: stanzas separated by blank lines; take URIs of a "deb" stanza listing the suite.
        mirror=$(awk -v suite="$CS_SUITE" '
            function flush() {
                if (!found && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") {
                    split(uris, u, " "); print u[1]; found = 1
                }
                types = ""; suites = ""; uris = ""
            }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            tolower($1) == "types:"  { $1 = ""; types = $0 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            tolower($1) == "uris:"   { $1 = ""; uris = $0 }
            END { flush() }' "$f")
        [[ -n $mirror ]] && break
    done
    if [[ -z $mirror && -f /etc/apt/sources.list ]]; then
        # One-line format: deb [options] URI SUITE COMPONENTS...
        mirror=$(sed -nE "s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+$CS_SUITE([[:space:]].*)?\$/\2/p" \
            /etc/apt/sources.list | head -n1)
    fi
    printf '%s\n' "${mirror:-http://deb.debian.org/debian}"
}

# ---------------------------------------------------------------------------
# busybox:latest
# ---------------------------------------------------------------------------
cs_build_busybox_stand_in() { # TAG
    local tag=$1 root applet
    # The image has no libc, so only the static build works (ldd fails on static binaries).
    ! ldd /bin/busybox >/dev/null 2>&1 ||
        die "/bin/busybox is dynamically linked; install busybox-static (it replaces busybox)"
    cs_mktemp_dir "$CS_CACHE_DIR"
    root=$CS_TMP
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var,dev,proc,sys}
    install -d -m 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    # One symlink per applet at the path busybox itself reports (bin/sh, usr/bin/env, ...).
    while read -r applet; do
        [[ $applet == bin/busybox || -e $root/$applet ]] && continue
        mkdir -p "$root/$(dirname "$applet")"
        ln -s /bin/busybox "$root/$applet"
    done < <(/bin/busybox --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar --numeric-owner -C "$root" -c . |
        docker import \
            --change "LABEL $CS_STAND_IN_LABEL=true" \
            --change 'CMD ["sh"]' \
            - "$tag" >/dev/null
    cs_safe_rmtree "$root"
}

# ---------------------------------------------------------------------------
# python:3.11-slim
# ---------------------------------------------------------------------------
cs_python_cache_key() { # MIRROR: what the cached rootfs depends on
    local ca_sum=none
    [[ -f $CS_HOST_CA_BUNDLE ]] && ca_sum=$(sha256sum <"$CS_HOST_CA_BUNDLE" | cut -d' ' -f1)
    printf 'recipe=%s\nsuite=%s\nmirror=%s\nhost_ca_sha256=%s\n' "$CS_PYTHON_RECIPE" "$CS_SUITE" "$1" "$ca_sum"
}

cs_python_rootfs_fixup() { # ROOT: make a debootstrap rootfs behave like the official python image
    local root=$1 py crt
    # TLS: this machine's network may intercept TLS with its own CA; builds can
    # only reach PyPI if the image trusts exactly what the host trusts.
    if [[ -f $CS_HOST_CA_BUNDLE ]]; then
        cp "$CS_HOST_CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
        # Also keep the host's local CAs as sources, so an update-ca-certificates
        # run later inside a build does not drop them again.
        for crt in /usr/local/share/ca-certificates/*.crt; do
            [[ -f $crt ]] || continue
            mkdir -p "$root/usr/local/share/ca-certificates"
            cp "$crt" "$root/usr/local/share/ca-certificates/"
        done
    fi
    # The official image has no PEP 668 marker: `pip install -r requirements.txt` must just work.
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    # The official image has `python` and `pip` commands.
    for py in python:python3 pip:pip3; do
        if [[ ! -e $root/usr/bin/${py%%:*} && ! -L $root/usr/bin/${py%%:*} ]]; then
            ln -s "${py#*:}" "$root/usr/bin/${py%%:*}"
        fi
    done
    # Smaller image; like the official one, `apt-get update` is needed before installs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/info/* "$root"/tmp/* "$root"/var/tmp/*
    rm -f "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/debconf/*-old
    find "$root/var/log" -type f -delete
}

CS_PY_TARBALL=""
cs_python_rootfs_tarball() { # TAG: set CS_PY_TARBALL to a (possibly cached) rootfs tarball
    local tag=$1 mirror key tarball root log
    mirror=$(cs_apt_mirror)
    key=$(cs_python_cache_key "$mirror")
    tarball=$CS_CACHE_DIR/${tag//[:\/]/-}-rootfs.tar
    if [[ -f $tarball && -f $tarball.key && $(cat "$tarball.key") == "$key" ]]; then
        say "$tag: using cached rootfs $tarball (built earlier; same mirror, recipe and host CA)"
        CS_PY_TARBALL=$tarball
        return 0
    fi
    command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
    [[ $(id -u) -eq 0 ]] || die "building the $tag stand-in needs root (debootstrap)"
    cs_mktemp_dir "$CS_CACHE_DIR"
    root=$CS_TMP
    log=$CS_CACHE_DIR/debootstrap.log
    mkdir -p "$CS_CACHE_DIR/debs"
    say "$tag: debootstrap --variant=minbase $CS_SUITE from $mirror (~40 s, log $log)"
    if ! debootstrap --variant=minbase --cache-dir="$CS_CACHE_DIR/debs" \
        --include=python3,python3-pip,python3-venv,ca-certificates \
        "$CS_SUITE" "$root" "$mirror" >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "debootstrap failed (full log: $log)"
    fi
    cs_python_rootfs_fixup "$root"
    # /dev, /proc and /sys are provided by the container runtime; keep them empty.
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' .
    mv -f "$tarball.tmp" "$tarball"
    printf '%s\n' "$key" >"$tarball.key"
    cs_safe_rmtree "$root"
    CS_PY_TARBALL=$tarball
}

cs_build_python_stand_in() { # TAG
    local tag=$1
    cs_python_rootfs_tarball "$tag"
    docker import \
        --change "LABEL $CS_STAND_IN_LABEL=true" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
        --change 'CMD ["python3"]' \
        "$CS_PY_TARBALL" "$tag" >/dev/null
}

# ---------------------------------------------------------------------------
# debian:bookworm-slim (base of the local runtime's proxy image, cloudship_local/proxy.py)
# ---------------------------------------------------------------------------
cs_build_debian_stand_in() { # TAG
    local tag=$1
    # The python stand-in's rootfs is a minbase bookworm with python3 on top: a superset of
    # debian:bookworm-slim, and already cached, so no second debootstrap is needed.
    cs_python_rootfs_tarball python:3.11-slim
    docker import \
        --change "LABEL $CS_STAND_IN_LABEL=true" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        "$CS_PY_TARBALL" "$tag" >/dev/null
}

# ---------------------------------------------------------------------------
# arm64: emulation (binfmt_misc + qemu) and an arm64 busybox stand-in
# ---------------------------------------------------------------------------
# Why: cloudship builds for the platform a target runs (Fargate on Graviton is linux/arm64),
# and the local runtime runs every platform the engine can emulate. The tests prove both by
# building and running a linux/arm64 image on this amd64 machine, which needs the kernel to
# hand arm64 binaries to qemu. arm64 only: the one other platform a cloud target runs.
CS_ARM64_BUSYBOX=cloudship-stand-in/busybox:arm64

cs_arm64_emulation_ready() {
    # Registered, enabled, and with the F (fix binary) flag: the engine's containers and
    # BuildKit's RUN steps then find the interpreter without it being inside the image.
    local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
    [[ -f $entry ]] && grep -qx enabled "$entry" && grep -Eq '^flags: .*F' "$entry"
}

cs_enable_arm64_emulation() {
    cs_arm64_emulation_ready && { say "arm64 emulation: qemu-aarch64 binfmt handler enabled"; return 0; }
    [[ $(id -u) -eq 0 ]] || die "enabling arm64 emulation needs root (binfmt_misc)"
    if ! dpkg-query -W -f='${Status}' qemu-user-static 2>/dev/null | grep -q "ok installed" ||
        ! command -v update-binfmts >/dev/null; then
        say "arm64 emulation: apt-get install qemu-user-static binfmt-support"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support >/dev/null
    fi
    # Containers and CI machines often boot without binfmt_misc mounted.
    if [[ ! -f /proc/sys/fs/binfmt_misc/register ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    # Debian's qemu-user-static registers its handlers with the F flag.
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --import qemu-aarch64
    cs_arm64_emulation_ready || die "qemu-aarch64 binfmt handler is not enabled with the F flag"
    say "arm64 emulation: enabled (qemu-aarch64, flags F)"
}

cs_build_arm64_busybox_stand_in() { # TAG
    local tag=$1 dir deb applet
    # `docker import --platform linux/arm64` silently records amd64 on this engine, so the
    # image is built FROM scratch with --platform instead, which records arm64 in its config.
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        apt-get update -qq >/dev/null
    fi
    cs_mktemp_dir "$CS_CACHE_DIR"
    dir=$CS_TMP
    # 2>/dev/null: apt warns that _apt cannot write into the private temp dir; root can.
    (cd "$dir" && apt-get download -qq busybox-static:arm64 >/dev/null 2>&1)
    deb=$(ls "$dir"/busybox-static_*_arm64.deb)
    mkdir -p "$dir/pkg" "$dir/root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp}
    dpkg-deb -x "$deb" "$dir/pkg"
    cp "$dir/pkg/bin/busybox" "$dir/root/bin/busybox"
    # Same applet links as the amd64 stand-in (same Debian package version).
    while read -r applet; do
        [[ $applet == bin/busybox || -e $dir/root/$applet ]] && continue
        mkdir -p "$dir/root/$(dirname "$applet")"
        ln -s /bin/busybox "$dir/root/$applet"
    done < <(/bin/busybox --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/root/etc/passwd"
    printf 'root:x:0:\n' >"$dir/root/etc/group"
    tar --numeric-owner -C "$dir/root" -cf "$dir/rootfs.tar" .
    printf 'FROM scratch\nADD rootfs.tar /\nLABEL %s=true\nCMD ["sh"]\n' "$CS_STAND_IN_LABEL" >"$dir/Dockerfile"
    # Debian's docker CLI has BuildKit built in (the CLI on PATH may lack buildx).
    DOCKER_BUILDKIT=1 /usr/bin/docker build -q --platform linux/arm64 -t "$tag" "$dir" >/dev/null
    [[ $(docker image inspect --format '{{.Architecture}}' "$tag") == arm64 ]] ||
        die "$tag was not recorded as arm64"
    cs_safe_rmtree "$dir"
}

cs_ensure_arm64() {
    cs_enable_arm64_emulation
    if cs_image_present "$CS_ARM64_BUSYBOX"; then
        say "$CS_ARM64_BUSYBOX: present, keeping it"
    else
        say "$CS_ARM64_BUSYBOX: building from Debian's busybox-static:arm64"
        cs_build_arm64_busybox_stand_in "$CS_ARM64_BUSYBOX"
    fi
    local out
    out=$(docker run --rm --platform linux/arm64 "$CS_ARM64_BUSYBOX" uname -m 2>&1) || true
    [[ $out == aarch64 ]] || die "an arm64 container does not run under emulation: $out"
    say "arm64 check: docker run $CS_ARM64_BUSYBOX uname -m -> aarch64"
}
