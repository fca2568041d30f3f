"""The host side: what runs on a managed host without Ansible (private to wirespeed.datapath).

cli (the host tool's entry), tool (the tool packed as a zipapp), units (systemd
unit files), restore (the boot restore), confirm (commit-confirmed arming and
its timer), metrics (the textfile collector's file and timer), flows (the flow
export agent). Modules install and drive these; nothing below host/ imports them.
"""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
