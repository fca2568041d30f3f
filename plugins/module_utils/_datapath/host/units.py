"""systemd units of the host side: their text's escaping, placement, enabling and removal, systemctl, and the
READY notification of a Type=notify unit.

Every unit the collection installs (the boot restore, the metrics timer, the
flow agent) is written here: atomically, only when its text differs, enabled
by its link in <target>.wants, and systemd told with daemon-reload where it
runs. Starting and stopping are systemd's job (the roles use
ansible.builtin.systemd_service); this module only places and removes files.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import shlex
import socket
import subprocess

from ..errors import DatapathError


def exec_line(argv: list) -> str:
    """An ExecStart= value that runs argv exactly: shell-quoted, then kept literal for systemd."""
    return unit_escape(" ".join(shlex.quote(str(a)) for a in argv))


def unit_escape(text: str) -> str:
    """systemd expands % specifiers and $ variables even inside quotes: keep them literal."""
    return text.replace("%", "%%").replace("$", "$$")


def check_unit_dir(unit_dir: str) -> None:
    """unit_dir is a directory, or can become one (its nearest existing parent is a directory)."""
    path = os.path.abspath(unit_dir)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        where = "is a file" if path == os.path.abspath(unit_dir) else "cannot be made where %s is a file" % path
        raise DatapathError("unit_dir %s %s; set unit_dir to the systemd unit directory, such as "
                            "/etc/systemd/system." % (unit_dir, where))


def write_text(path: str, text: str) -> None:
    tmp = path + ".wirespeed-tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def place_units(unit_dir: str, texts: dict[str, str], enable: tuple[str, str], *, what: str,
                check_mode: bool = False) -> bool:
    """Write the unit files of texts {name: text} that differ and enable one, (unit name, target), by its link in
    <target>.wants; whether anything was (or, in check mode, would be) changed."""
    stale = []
    for name, text in texts.items():
        try:
            with open(os.path.join(unit_dir, name)) as fh:
                if fh.read() == text:
                    continue
        except OSError:
            pass
        stale.append(name)
    unit = os.path.join(unit_dir, enable[0])
    link = os.path.join(unit_dir, enable[1] + ".wants", enable[0])
    relink = not os.path.islink(link) or os.path.realpath(link) != os.path.realpath(unit)
    if (stale or relink) and not check_mode:
        try:
            for name in stale:
                write_text(os.path.join(unit_dir, name), texts[name])
            if relink:
                os.makedirs(os.path.dirname(link), exist_ok=True)
                if os.path.lexists(link):
                    os.unlink(link)
                os.symlink(unit, link)
        except OSError as exc:
            raise DatapathError("the %s cannot be written to %s (%s); set unit_dir to the systemd unit directory."
                                % (what, unit_dir, exc.strerror)) from exc
        daemon_reload()
    return bool(stale or relink)


def remove_files(paths: list[str], check_mode: bool = False) -> dict:
    """Remove those of paths that exist (units, their links, files they wrote); {changed, removed}."""
    present = [p for p in paths if os.path.lexists(p)]
    if present and not check_mode:
        for path in present:
            os.unlink(path)
        daemon_reload()
    return {"changed": bool(present), "removed": present}


def daemon_reload() -> None:
    if os.path.isdir("/run/systemd/system"):  # systemd runs: tell it; elsewhere the files are all there is
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True, check=False)


def notify_ready(status: str = "") -> bool:
    """sd_notify(READY=1) to the systemd that started this process as a Type=notify unit ($NOTIFY_SOCKET);
    whether it was sent (False outside systemd: nobody waits)."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # an abstract socket
        path = "\0" + path[1:]
    message = "READY=1" + ("\nSTATUS=%s" % status if status else "")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True
