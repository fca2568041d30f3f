"""What a host remembers: the Record of each deployed program and the state directory that keeps it."""
# Copyright (c) wirespeed.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
