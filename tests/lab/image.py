# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Debian root filesystem the booting lab's hosts start from, built once and cached.

    image.py build [--release bookworm]   build it (or say where the cached one is)
    image.py path [--release bookworm]    print the cached image's directory

An image is built with mmdebstrap from the Debian mirror this machine's apt sources name, into
/var/cache/wirespeed-lab/<release>-<hash>/ (the hash covers the release, the package list and the
recipe below, so a change of either builds a new one; CI on this machine reuses the cached one):

    rootfs/   the host's root: systemd as PID 1, sshd started by systemd, the distro's /usr/bin/python3,
              sudo, iproute2, and a login user `ops` with passwordless sudo (its ~/.ssh/authorized_keys is
              written per lab into the host's own upper layer, not into the image). NOT pyroute2 or libbpf:
              the collection's `host` role installs them from
    repo/     a flat apt repository (apt-ftparchive) of the .deb files the image lacks for python3-pyroute2,
              libbpf1 and python3-apt (what Ansible's apt module installs first): the lab serves it on its
              bridge, and the image's apt sources point at it (the lab writes the address per host), as
              fleets behind an internal mirror do.

A build takes a few minutes (most of it downloading and unpacking ~150 packages); concurrent callers
wait on the release's lock file and then use the image the first one built; two releases build at once.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

CACHE = os.environ.get("WIRESPEED_LAB_CACHE", "/var/cache/wirespeed-lab")
MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
USER = "ops"
# what a small Debian server has; the host's Python is the distro's, with nothing the collection needs
PACKAGES = ["systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "python3", "iproute2", "procps",
            "ca-certificates"]
# what the `host` role (and Ansible's apt module before it) installs: served from the lab's repository
REPO_PACKAGES = ["python3-pyroute2", "libbpf1", "python3-apt"]
RELEASES = ("bookworm", "trixie")
RECIPE = 5  # bump when the hooks below change what an image holds


def _sources(release):
    """The mirror lines for a release: the main suite, its updates and its security suite."""
    return [
        "deb %s %s main" % (MIRROR, release),
        "deb %s %s-updates main" % (MIRROR, release),
        "deb %s %s-security main" % (SECURITY, release),
    ]


def key(release):
    text = "\n".join([release, str(RECIPE), " ".join(PACKAGES), " ".join(REPO_PACKAGES)] + _sources(release))
    return "%s-%s" % (release, hashlib.sha256(text.encode()).hexdigest()[:12])


def path(release="bookworm"):
    return os.path.join(CACHE, key(release))


def ready(release="bookworm"):
    return os.path.exists(os.path.join(path(release), "done"))


def _hooks(release, repo):
    """mmdebstrap --customize-hook commands ("$1" is the new root)."""
    q = _quote
    return [
        # the login user: a password-less account, sudo without a password, key login only (sshd default)
        'chroot "$1" useradd --create-home --shell /bin/bash %s' % USER,
        'echo "%s ALL=(ALL:ALL) NOPASSWD: ALL" > "$1/etc/sudoers.d/%s" && chmod 0440 "$1/etc/sudoers.d/%s"'
        % (USER, USER, USER),
        # the packages the host role installs: downloaded into the image's apt cache, moved out to the repository
        'chroot "$1" apt-get install -y --download-only --no-install-recommends %s' % " ".join(REPO_PACKAGES),
        'mkdir -p %s && mv "$1"/var/cache/apt/archives/*.deb %s/' % (q(repo), q(repo)),
        # its apt sources are the lab's repository only (the lab writes its address into each host's upper layer)
        'rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*',
        # a network service, as every Debian server has one (ifupdown or systemd-networkd): it pulls in
        # network.target, which orders sshd after network-pre.target and so after the datapath's restore. It
        # manages no link here (no .network file matches eth0, which the lab configures from outside).
        'chroot "$1" systemctl enable systemd-networkd.service',
        # no /run/nologin while booting (a lab deviation from a stock host): systemd-user-sessions, which removes
        # it, once failed to start in a loaded CI run and left `ops` locked out of a host that had booted
        'ln -sf /dev/null "$1/etc/tmpfiles.d/systemd-nologin.conf"',
        # no unit that waits for hardware or a network this host does not have
        'chroot "$1" systemctl mask systemd-networkd-wait-online.service getty@tty1.service '
        'console-getty.service systemd-resolved.service 2>/dev/null || true',
        'rm -f "$1/etc/machine-id" && touch "$1/etc/machine-id"',
        'echo wirespeed-lab > "$1/etc/hostname"',
    ]


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def build(release="bookworm", log=sys.stderr):
    """The cached image's directory, built first if it is not there."""
    if release not in RELEASES:
        raise SystemExit("no lab image recipe for %r (known: %s)" % (release, ", ".join(RELEASES)))
    final = path(release)
    if ready(release):
        return final
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock-" + release), "w") as lock:  # releases build side by side
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready(release):
            return final
        if shutil.which("mmdebstrap") is None or shutil.which("apt-ftparchive") is None:
            raise SystemExit("building the lab image needs mmdebstrap and apt-ftparchive: "
                             "apt-get install mmdebstrap apt-utils systemd-container")
        work = final + ".building"
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        rootfs, repo = os.path.join(work, "rootfs"), os.path.join(work, "repo")
        started = time.monotonic()
        cmd = ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory",
               "--include=" + ",".join(PACKAGES), "--components=main", "--aptopt=Acquire::Retries \"3\""]
        cmd += ["--customize-hook=" + h for h in _hooks(release, repo)]
        cmd += [release, rootfs] + _sources(release)
        print("lab image: building %s in %s" % (release, final), file=log, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            shutil.rmtree(work, ignore_errors=True)
            raise RuntimeError("mmdebstrap failed for %s (exit %d): %s" % (release, proc.returncode,
                                                                           proc.stderr[-3000:]))
        _index(repo)
        with open(os.path.join(work, "done"), "w") as fh:
            fh.write("built %s in %.0f s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), time.monotonic() - started))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(work, final)
        print("lab image: %s built in %.0f s" % (release, time.monotonic() - started), file=log, flush=True)
    return final


def _index(repo):
    """A flat apt repository: Packages and Release files beside the .deb files (`deb [trusted=yes] URL ./`)."""
    packages = subprocess.run(["apt-ftparchive", "packages", "."], cwd=repo, capture_output=True, text=True,
                              check=True).stdout
    if not re.search(r"^Package: python3-pyroute2$", packages, re.M):
        raise RuntimeError("the lab repository in %s has no python3-pyroute2: %s" % (repo, os.listdir(repo)))
    with open(os.path.join(repo, "Packages"), "w") as fh:
        fh.write(packages)
    release = subprocess.run(["apt-ftparchive", "release", "."], cwd=repo, capture_output=True, text=True,
                             check=True).stdout
    with open(os.path.join(repo, "Release"), "w") as fh:
        fh.write(release)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["build", "path"])
    parser.add_argument("--release", default="bookworm", choices=RELEASES)
    args = parser.parse_args(argv)
    print(build(args.release) if args.action == "build" else path(args.release))


if __name__ == "__main__":
    main()
